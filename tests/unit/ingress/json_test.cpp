// load_json: API objects (JSON) read by the same object readers as manifests (YAML).
#include <gtest/gtest.h>

#include <sstream>

#include "phigate/ingress/loader.hpp"

namespace phigate::ingress {
namespace {

LoadResult from_json(const std::string& text, const std::string& file = "kubernetes:test") {
  LoadResult r;
  load_json(text, file, r);
  return r;
}

LoadResult from_yaml(const std::string& text) {
  LoadResult r;
  load_text(text, "m.yaml", r);
  return r;
}

void dump_meta(std::ostream& o, const ObjectMeta& m) {
  o << "meta " << m.key() << " created=" << m.created.value_or(-1);
  for (const auto& [k, v] : m.annotations) o << " a:" << k << "=" << v;
  for (const auto& [k, v] : m.labels) o << " l:" << k << "=" << v;
  o << "\n";
}

void dump_problems(std::ostream& o, const std::vector<std::string>& p) {
  for (const auto& x : p) o << " problem:" << x;
  o << "\n";
}

void dump_backend(std::ostream& o, const IngressBackend& b) {
  if (b.service) {
    o << " svc=" << b.service->name << ":" << b.service->port_number << "/" << b.service->port_name;
  } else {
    o << " resource";
  }
}

/// Every field the readers fill except lines (JSON has none): two loads that dump the same read the
/// same objects.
std::string dump(const LoadResult& r) {
  std::ostringstream o;
  for (const auto& i : r.resources.ingresses) {
    o << "Ingress ";
    dump_meta(o, i.meta);
    o << " class=" << i.class_name.value_or("<none>");
    if (i.default_backend) dump_backend(o, *i.default_backend);
    for (const auto& t : i.tls) {
      o << " tls:" << t.secret_name;
      for (const auto& h : t.hosts) o << "," << h;
    }
    for (const auto& rule : i.rules) {
      o << " rule:" << rule.host;
      for (const auto& p : rule.paths) {
        o << " path:" << p.path << "/" << static_cast<int>(p.type);
        dump_backend(o, p.backend);
      }
    }
    for (const auto& lb : i.load_balancer) o << " lb:" << lb;
    dump_problems(o, i.problems);
  }
  for (const auto& c : r.resources.ingress_classes) {
    o << "IngressClass ";
    dump_meta(o, c.meta);
    o << " controller=" << c.controller << " default=" << c.is_default;
    dump_problems(o, c.problems);
  }
  for (const auto& s : r.resources.secrets) {
    o << "Secret ";
    dump_meta(o, s.meta);
    o << " type=" << s.type;
    for (const auto& [k, v] : s.data) o << " " << k << "=" << v;
    dump_problems(o, s.problems);
  }
  for (const auto& s : r.resources.services) {
    o << "Service ";
    dump_meta(o, s.meta);
    o << " type=" << s.type;
    for (const auto& p : s.ports) o << " port:" << p.name << "," << p.port << "," << p.target_port;
    for (const auto& lb : s.load_balancer) o << " lb:" << lb;
    dump_problems(o, s.problems);
  }
  for (const auto& s : r.resources.endpoint_slices) {
    o << "EndpointSlice ";
    dump_meta(o, s.meta);
    o << " svc=" << s.service_name << " type=" << s.address_type;
    for (const auto& p : s.ports) o << " port:" << p.name << "," << p.port.value_or(-1);
    for (const auto& e : s.endpoints) {
      o << " ep:" << e.ready << e.serving << e.terminating;
      for (const auto& a : e.addresses) o << "," << a;
    }
    dump_problems(o, s.problems);
  }
  for (const auto& d : r.diagnostics.entries()) {
    o << "diag " << (d.severity == config::Severity::Error ? "E " : "W ") << d.resource << " " << d.field
      << ": " << d.message << "\n";
  }
  return o.str();
}

// As the API server sends them (kubectl get -o json): JSON is also YAML, so the same text through
// load_text (libyaml) and load_json (simdjson) must read the same objects.
const std::string kIngress = R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
 "metadata":{"name":"web","namespace":"shop","creationTimestamp":"2024-05-01T10:00:00Z","resourceVersion":"17",
  "annotations":{"nginx.ingress.kubernetes.io/ssl-redirect":"false","phigate.io/x":""},"labels":{"app":"web"}},
 "spec":{"ingressClassName":"phigate","defaultBackend":{"service":{"name":"def","port":{"number":80}}},
  "tls":[{"hosts":["a.example","b.example"],"secretName":"tls-a"}],
  "rules":[{"host":"a.example","http":{"paths":[
    {"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"name":"http"}}}},
    {"path":"/x","pathType":"Exact","backend":{"service":{"name":"web","port":{"number":8080}}}},
    {"path":"/r","pathType":"ImplementationSpecific","backend":{"resource":{"kind":"Bucket","name":"b"}}}]}}]},
 "status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1"},{"hostname":"lb.example"}]}}})";
const std::string kClass = R"({"apiVersion":"networking.k8s.io/v1","kind":"IngressClass",
 "metadata":{"name":"phigate","annotations":{"ingressclass.kubernetes.io/is-default-class":"true"}},
 "spec":{"controller":"phigate.io/ingress-controller"}})";
const std::string kSecret = R"({"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/tls",
 "metadata":{"name":"tls-a","namespace":"shop"},"data":{"tls.crt":"Y2VydA==","tls.key":"a2V5"},
 "stringData":{"extra":"plain"}})";
const std::string kService =
    R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},
 "spec":{"type":"LoadBalancer","ports":[{"name":"http","port":80,"targetPort":8080,"protocol":"TCP"},
  {"port":443,"targetPort":"https"}]},
 "status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.7","ports":[{"port":80}]}]}}})";
const std::string kSlice = R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
 "metadata":{"name":"web-abc","namespace":"shop","labels":{"kubernetes.io/service-name":"web"}},
 "addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"},{"name":null,"port":9090}],
 "endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true,"serving":true,"terminating":false}},
  {"addresses":["10.0.0.2"],"conditions":{"ready":false,"serving":true,"terminating":true}},
  {"addresses":["10.0.0.3"],"conditions":null}]})";

TEST(IngressJson, EveryKindReadsAsTheYamlPathReadsIt) {
  for (const auto* text : {&kIngress, &kClass, &kSecret, &kService, &kSlice}) {
    const auto j = from_json(*text);
    const auto y = from_yaml(*text);
    EXPECT_EQ(dump(j), dump(y)) << *text;
    EXPECT_FALSE(j.diagnostics.has_errors()) << j.diagnostics.to_string();
  }
  const auto j = from_json(kIngress);
  ASSERT_EQ(j.resources.ingresses.size(), 1u);
  const auto& ing = j.resources.ingresses[0];
  EXPECT_EQ(ing.meta.key(), "shop/web");
  ASSERT_EQ(ing.rules.size(), 1u);
  ASSERT_EQ(ing.rules[0].paths.size(), 3u);
  EXPECT_EQ(ing.rules[0].paths[1].backend.service->port_number, 8080);
  EXPECT_FALSE(ing.rules[0].paths[2].backend.service.has_value());
  EXPECT_EQ(ing.meta.annotations.at("phigate.io/x"), "");
  const auto s = from_json(kSlice);
  ASSERT_EQ(s.resources.endpoint_slices.size(), 1u);
  ASSERT_EQ(s.resources.endpoint_slices[0].endpoints.size(), 3u);
  EXPECT_FALSE(s.resources.endpoint_slices[0].endpoints[1].ready);
  EXPECT_TRUE(s.resources.endpoint_slices[0].endpoints[1].terminating);
  EXPECT_TRUE(s.resources.endpoint_slices[0].endpoints[2].ready);  // null conditions: the defaults
  EXPECT_EQ(s.resources.endpoint_slices[0].ports[1].name, "");
  const auto sec = from_json(kSecret);
  ASSERT_EQ(sec.resources.secrets.size(), 1u);
  EXPECT_EQ(sec.resources.secrets[0].data.at("tls.crt"), "cert");
  EXPECT_EQ(sec.resources.secrets[0].data.at("extra"), "plain");
}

TEST(IngressJson, StatusLoadBalancerRead) {
  const auto i = from_json(kIngress);
  ASSERT_EQ(i.resources.ingresses.size(), 1u);
  EXPECT_EQ(i.resources.ingresses[0].load_balancer, (std::vector<std::string>{"192.0.2.1", "lb.example"}));
  const auto s = from_json(kService);
  ASSERT_EQ(s.resources.services.size(), 1u);
  EXPECT_EQ(s.resources.services[0].load_balancer, (std::vector<std::string>{"198.51.100.7"}));
  EXPECT_EQ(s.resources.services[0].ports[0].target_port, "8080");  // a JSON number as its text

  // Status is written by controllers: a broken entry is a warning, never a problem that would
  // fail the Ingress closed.
  const auto bad = from_json(R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
    "metadata":{"name":"w","namespace":"d"},"spec":{},
    "status":{"loadBalancer":{"ingress":[{"ip":7},{"hostname":"ok.example"},"x"]}}})");
  ASSERT_EQ(bad.resources.ingresses.size(), 1u);
  EXPECT_TRUE(bad.resources.ingresses[0].problems.empty());
  EXPECT_EQ(bad.resources.ingresses[0].load_balancer, (std::vector<std::string>{"7", "ok.example"}));
  EXPECT_FALSE(bad.diagnostics.has_errors());
  EXPECT_EQ(bad.diagnostics.entries().size(), 1u) << bad.diagnostics.to_string();
  const auto not_list =
      from_json(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d"},
    "status":{"loadBalancer":{"ingress":{"ip":"1.2.3.4"}}}})");
  ASSERT_EQ(not_list.resources.services.size(), 1u);
  EXPECT_TRUE(not_list.resources.services[0].load_balancer.empty());
  EXPECT_TRUE(not_list.resources.services[0].problems.empty());
}

TEST(IngressJson, TypedListItemsWithoutKind) {
  const auto r = from_json(R"({"kind":"IngressList","apiVersion":"networking.k8s.io/v1",
    "metadata":{"resourceVersion":"99"},
    "items":[{"metadata":{"name":"a","namespace":"n1"},"spec":{"ingressClassName":"phigate"}},
             {"metadata":{"name":"b","namespace":"n2"},"spec":{}}]})",
                           "kubernetes:IngressList");
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.ingresses.size(), 2u);
  EXPECT_EQ(r.resources.ingresses[0].meta.key(), "n1/a");
  EXPECT_EQ(r.resources.ingresses[1].meta.key(), "n2/b");
  EXPECT_EQ(r.resources.ingresses[1].origin.where(), "kubernetes:IngressList.items[1]");
}

TEST(IngressJson, DiagnosticsNameTheApiObject) {
  const auto r = from_json(R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
    "metadata":{"name":"web","namespace":"shop"},"spec":{"rules":"not a list"}})",
                           "kubernetes:Ingress shop/web");
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  EXPECT_EQ(r.resources.ingresses[0].problems, (std::vector<std::string>{"spec.rules"}));
  ASSERT_EQ(r.diagnostics.error_count(), 1u);
  const auto& d = r.diagnostics.entries()[0];
  EXPECT_EQ(d.file, "kubernetes:Ingress shop/web");  // no "#0": the API has no documents
  EXPECT_EQ(d.resource, "Ingress shop/web");
  EXPECT_EQ(d.field, "spec.rules");
  EXPECT_EQ(d.line, 0);
}

TEST(IngressJson, WrongTypesAreFieldErrors) {
  // Numbers where strings go are read as their text (as YAML reads 8080); objects and lists where
  // scalars go, non-integers where integers go and out-of-range values are errors naming the field.
  const auto r = from_json(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d",
    "labels":{"a":{"b":1}}},
    "spec":{"ports":[{"port":8080.0},{"port":70000},{"port":"80"},{"port":true},{"port":[1]},{"port":80}]}})");
  ASSERT_EQ(r.resources.services.size(), 1u);
  const auto& p = r.resources.services[0].problems;
  EXPECT_EQ(p, (std::vector<std::string>{"metadata.labels.a", "spec.ports[0].port", "spec.ports[1].port",
                                         "spec.ports[3].port", "spec.ports[4].port"}));
  EXPECT_EQ(r.resources.services[0].ports[2].port, 80);  // "80" is an integer to YAML's reader too
  EXPECT_EQ(r.resources.services[0].ports[5].port, 80);
}

TEST(IngressJson, NullIsAbsentAndTheStringNullIsAString) {
  const auto r = from_json(R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
    "metadata":{"name":"w","namespace":"d","annotations":null,"labels":{"x":"null"}},
    "spec":{"ingressClassName":null,"tls":null,"rules":null}})");
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  const auto& i = r.resources.ingresses[0];
  EXPECT_TRUE(i.problems.empty());
  EXPECT_FALSE(i.class_name.has_value());
  EXPECT_EQ(i.meta.labels.at("x"), "null");
}

TEST(IngressJson, MalformedIsOneErrorAndNoObject) {
  for (
      const std::string& text : std::vector<std::string>{
          "", "{", "[1,", "{\"kind\":\"Ingress\",}", "{\"a\":\"\\x\"}", "nul", "{\"a\":1} {\"b\":2}",
          std::string("{\"a\":\"\xff\"}"),
          // Half a List: nothing of it may load.
          R"({"kind":"IngressList","apiVersion":"networking.k8s.io/v1","items":[{"metadata":{"name":"a","namespace":"n"}},)"}) {
    const auto r = from_json(text, "kubernetes:Ingress x/y");
    EXPECT_EQ(r.diagnostics.error_count(), 1u) << text;
    EXPECT_TRUE(r.resources.ingresses.empty()) << text;
    ASSERT_FALSE(r.diagnostics.entries().empty());
    EXPECT_EQ(r.diagnostics.entries()[0].file, "kubernetes:Ingress x/y");
    EXPECT_NE(r.diagnostics.entries()[0].message.find("invalid JSON"), std::string::npos);
  }
}

TEST(IngressJson, NotAnObjectIsRefused) {
  for (const std::string& text : std::vector<std::string>{"[]", "7", "\"x\"", "null", "true"}) {
    const auto r = from_json(text);
    EXPECT_EQ(r.diagnostics.error_count(), 1u) << text;
  }
}

TEST(IngressJson, DeepNestingRefused) {
  std::string deep = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d"},"x":)";
  for (int i = 0; i < 5000; ++i) deep += "[";
  for (int i = 0; i < 5000; ++i) deep += "]";
  deep += "}";
  const auto r = from_json(deep);
  EXPECT_EQ(r.diagnostics.error_count(), 1u);
  EXPECT_TRUE(r.resources.services.empty());
  ASSERT_FALSE(r.diagnostics.entries().empty());
  EXPECT_NE(r.diagnostics.entries()[0].message.find("nested deeper"), std::string::npos)
      << r.diagnostics.entries()[0].message;

  // Within the bound, nesting is fine (an unknown field is skipped).
  std::string ok = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d"},"x":)";
  for (int i = 0; i < 500; ++i) ok += "[";
  for (int i = 0; i < 500; ++i) ok += "]";
  ok += "}";
  const auto r2 = from_json(ok);
  EXPECT_FALSE(r2.diagnostics.has_errors()) << r2.diagnostics.to_string();
  EXPECT_EQ(r2.resources.services.size(), 1u);
}

TEST(IngressJson, HugeNumbers) {
  // Beyond double range: simdjson refuses the document (one error, no object).
  const auto r = from_json(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d"},
    "spec":{"ports":[{"port":1e400}]}})");
  EXPECT_EQ(r.diagnostics.error_count(), 1u) << r.diagnostics.to_string();
  EXPECT_TRUE(r.resources.services.empty());
  // Beyond 64 bits, or beyond int32 ranges: either refused whole or a field error, never a port.
  for (const std::string& n :
       std::vector<std::string>{"18446744073709551616", "99999999999999999999999", "18446744073709551615",
                                "-9223372036854775809", "4294967376", "-1", "1e5", "8.08e3"}) {
    const auto r2 = from_json(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d"},
      "spec":{"ports":[{"port":)" +
                              n + "}]}}");
    EXPECT_TRUE(r2.diagnostics.has_errors()) << n;
    for (const auto& s : r2.resources.services) {
      ASSERT_EQ(s.ports.size(), 1u) << n;
      EXPECT_EQ(s.ports[0].port, 0) << n;
      EXPECT_FALSE(s.problems.empty()) << n;
    }
  }
}

TEST(IngressJson, DuplicateKeysReadTheFirstAsYaml) {
  const std::string text =
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"d","name":"b"}})";
  EXPECT_EQ(dump(from_json(text)), dump(from_yaml(text)));
}

}  // namespace
}  // namespace phigate::ingress
