// The provider's store and the reflector's parsing, event by event (no sockets).
#include <gtest/gtest.h>

// GCC 12 at -O3 reports a bogus memcpy bound in std::string concatenation (GCC bug 105329).
#pragma GCC diagnostic ignored "-Wstringop-overflow"

// Private headers of the kube library (tests/unit/CMakeLists.txt gives unit_kube no src/kube include).
#include "../../../src/kube/reflector_impl.hpp"
#include "../../../src/kube/store_impl.hpp"

namespace phigate::kube {
namespace {

using detail::Store;

std::string ingress(const std::string& ns, const std::string& name, const std::string& extra_spec = "",
                    const std::string& annotations = "{}") {
  return R"({"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":")" + name +
         R"(","namespace":")" + ns + R"(","resourceVersion":"1","annotations":)" + annotations +
         R"(},"spec":{"ingressClassName":"phigate")" + extra_spec + "}}";
}

std::string secret(const std::string& ns, const std::string& name) {
  return R"({"kind":"Secret","apiVersion":"v1","metadata":{"name":")" + name + R"(","namespace":")" + ns +
         R"("},"data":{"tls.crt":"Y2VydA=="}})";
}

std::vector<std::string> ingress_keys(const ingress::LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& i : r.resources.ingresses) out.push_back(i.meta.key());
  return out;
}

TEST(KubeStore, ListReplacesTheScopeWholesale) {
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{});
  EXPECT_EQ(s.replace("ing", {ingress("b", "y"), ingress("a", "x"), ingress("a", "z")}), 0u);
  EXPECT_EQ(ingress_keys(s.resources()), (std::vector<std::string>{"a/x", "a/z", "b/y"}));  // sorted
  // A re-LIST after a disconnection: a/x was deleted meanwhile and must disappear.
  EXPECT_EQ(s.replace("ing", {ingress("a", "z"), ingress("b", "y")}), 0u);
  EXPECT_EQ(ingress_keys(s.resources()), (std::vector<std::string>{"a/z", "b/y"}));
  EXPECT_EQ(s.replace("ing", {}), 0u);
  EXPECT_TRUE(s.resources().resources.ingresses.empty());
}

TEST(KubeStore, EventsApplyOneObject) {
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{"a", "", ""});
  s.replace("ing", {ingress("a", "x")});
  EXPECT_TRUE(s.apply("ing", EventType::Added, ingress("a", "y")));
  EXPECT_EQ(ingress_keys(s.resources()), (std::vector<std::string>{"a/x", "a/y"}));
  EXPECT_TRUE(s.apply("ing", EventType::Modified, ingress("a", "x", R"(,"rules":[{"host":"h.example"}])")));
  auto r = s.resources();
  ASSERT_EQ(r.resources.ingresses.size(), 2u);
  ASSERT_EQ(r.resources.ingresses[0].rules.size(), 1u);
  EXPECT_EQ(r.resources.ingresses[0].rules[0].host, "h.example");
  EXPECT_TRUE(s.apply("ing", EventType::Deleted, ingress("a", "x")));
  EXPECT_EQ(ingress_keys(s.resources()), (std::vector<std::string>{"a/y"}));
  // Deleting what is not there changes nothing.
  EXPECT_TRUE(s.apply("ing", EventType::Deleted, ingress("a", "gone")));
  EXPECT_EQ(s.size("ing"), 1u);
}

TEST(KubeStore, ObjectsWithFieldErrorsKeepTheirDiagnostics) {
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{});
  s.replace("ing", {ingress("a", "bad", R"(,"rules":"x")"), ingress("a", "good")});
  const auto r = s.resources();
  ASSERT_EQ(r.resources.ingresses.size(), 2u);
  EXPECT_FALSE(r.resources.ingresses[0].problems.empty());  // a/bad fails closed in translate()
  EXPECT_TRUE(r.resources.ingresses[1].problems.empty());
  ASSERT_EQ(r.diagnostics.error_count(), 1u);
  EXPECT_EQ(r.diagnostics.entries()[0].file, "kubernetes:Ingress a/bad");
  EXPECT_EQ(r.diagnostics.entries()[0].field, "spec.rules");
  EXPECT_EQ(r.broken_files, 0u);
}

TEST(KubeStore, ObjectsOutsideTheScopeAreRefusedAndDoNotPoisonIt) {
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{"a", "", ""});
  s.add_scope("sec", ResourceKind::secret(), Scope{"a", "", "metadata.name=tls"});
  s.replace("ing", {ingress("a", "x")});
  s.replace("sec", {secret("a", "tls")});
  // A hostile or broken server: another namespace, another name than asked for, another kind,
  // no name, no namespace, not JSON, not an object.
  EXPECT_FALSE(s.apply("ing", EventType::Added, ingress("b", "x")));
  EXPECT_NE(s.last_refusal().find("outside the watched namespace"), std::string::npos) << s.last_refusal();
  EXPECT_FALSE(s.apply("sec", EventType::Added, secret("a", "other")));
  EXPECT_FALSE(s.apply("ing", EventType::Added, secret("a", "x")));
  EXPECT_FALSE(s.apply("ing", EventType::Added, R"({"kind":"Ingress","metadata":{"namespace":"a"}})"));
  EXPECT_FALSE(s.apply("ing", EventType::Added, R"({"kind":"Ingress","metadata":{"name":"n"}})"));
  EXPECT_FALSE(
      s.apply("ing", EventType::Added, R"({"kind":"Ingress","metadata":{"name":7,"namespace":"a"}})"));
  EXPECT_FALSE(s.apply("ing", EventType::Modified, "{not json"));
  EXPECT_FALSE(s.apply("ing", EventType::Deleted, "[1,2]"));
  EXPECT_FALSE(s.apply("unknown-scope", EventType::Added, ingress("a", "y")));
  // A LIST with one bad item: the good ones load, the bad one is counted.
  EXPECT_EQ(s.replace("ing", {ingress("a", "x"), ingress("c", "evil"), "{"}), 2u);
  const auto r = s.resources();
  EXPECT_EQ(ingress_keys(r), (std::vector<std::string>{"a/x"}));
  ASSERT_EQ(r.resources.secrets.size(), 1u);
  EXPECT_EQ(r.resources.secrets[0].meta.key(), "a/tls");
}

TEST(KubeStore, ResourcesInStableOrderAndOnceAcrossScopes) {
  Store s;
  s.add_scope("s1", ResourceKind::secret(), Scope{"a", "", "metadata.name=t"});
  s.add_scope("s2", ResourceKind::secret(), Scope{"a", "l=1", ""});
  s.add_scope("cls", ResourceKind::ingress_class(), Scope{});
  s.replace("s1", {secret("a", "t")});
  s.replace("s2", {secret("a", "u"), secret("a", "t")});
  s.replace("cls",
            {R"({"kind":"IngressClass","apiVersion":"networking.k8s.io/v1","metadata":{"name":"phigate"},
                      "spec":{"controller":"phigate.io/ingress-controller"}})"});
  const auto r = s.resources();
  ASSERT_EQ(r.resources.secrets.size(), 2u);
  EXPECT_EQ(r.resources.secrets[0].meta.key(), "a/t");
  EXPECT_EQ(r.resources.secrets[1].meta.key(), "a/u");
  ASSERT_EQ(r.resources.ingress_classes.size(), 1u);
  EXPECT_EQ(r.resources.ingress_classes[0].controller, "phigate.io/ingress-controller");
  s.remove_scope("s2");
  ASSERT_EQ(s.resources().resources.secrets.size(), 1u);
  s.remove_scope("s1");
  EXPECT_TRUE(s.resources().resources.secrets.empty());
}

TEST(KubeStore, ReferencedSecretsFollowTheIngresses) {
  config::IngressSpec spec;  // class "phigate"
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{});
  s.replace("ing", {ingress("a", "x", R"(,"tls":[{"hosts":["h"],"secretName":"tls-x"},{"hosts":["i"]}])")});
  EXPECT_EQ(detail::wanted_secrets(s, spec), (std::set<std::string>{"a/tls-x"}));

  // auth-tls-secret and proxy-ssl-secret, "name" or "ns/name" of the Ingress's own namespace.
  s.apply(
      "ing", EventType::Added,
      ingress(
          "b", "y", "",
          R"({"nginx.ingress.kubernetes.io/auth-tls-secret":"b/ca","phigate.io/proxy-ssl-secret":"client"})"));
  EXPECT_EQ(detail::wanted_secrets(s, spec), (std::set<std::string>{"a/tls-x", "b/ca", "b/client"}));

  // Another namespace's Secret is refused by the annotation parser, so it is not fetched.
  s.apply("ing", EventType::Modified,
          ingress("b", "y", "", R"({"nginx.ingress.kubernetes.io/auth-tls-secret":"kube-system/ca"})"));
  EXPECT_EQ(detail::wanted_secrets(s, spec), (std::set<std::string>{"a/tls-x"}));

  // Another controller's Ingress: its Secrets are not ours to read.
  s.apply("ing", EventType::Modified,
          R"({"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"x","namespace":"a"},
              "spec":{"ingressClassName":"nginx","tls":[{"secretName":"tls-x"}]}})");
  EXPECT_TRUE(detail::wanted_secrets(s, spec).empty());

  // Only watched namespaces.
  s.replace("ing", {ingress("a", "x", R"(,"tls":[{"secretName":"t1"}])"),
                    ingress("c", "z", R"(,"tls":[{"secretName":"t2"}])")});
  spec.kubernetes.namespaces = {"c"};
  EXPECT_EQ(detail::wanted_secrets(s, spec), (std::set<std::string>{"c/t2"}));
  spec.kubernetes.namespaces = {};
  EXPECT_EQ(detail::wanted_secrets(s, spec), (std::set<std::string>{"a/t1", "c/t2"}));

  // Deleted: nothing referenced any more.
  s.apply("ing", EventType::Deleted, ingress("a", "x"));
  s.apply("ing", EventType::Deleted, ingress("c", "z"));
  EXPECT_TRUE(detail::wanted_secrets(s, spec).empty());
}

TEST(KubeStore, SecretsFollowedAreCappedPerIngressPerNamespaceAndInAll) {
  // A tenant's Ingress naming thousands of Secrets would otherwise cost one LIST and one held
  // WATCH each (descriptors, the API server's budget) and crowd out other namespaces.
  config::IngressSpec spec;
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{});
  const auto many = [](const std::string& prefix, std::size_t n) {
    std::string tls = R"(,"tls":[)";
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) tls.push_back(',');
      tls.append(R"({"secretName":")").append(prefix).append(std::to_string(i)).append(R"("})");
    }
    tls.push_back(']');
    return tls;
  };
  std::vector<std::string> objects{ingress("a", "greedy", many("s", detail::kMaxSecretsPerIngress + 8)),
                                   ingress("b", "modest", many("t", 2))};
  s.replace("ing", objects);
  std::size_t dropped = 0;
  auto wanted = detail::wanted_secrets(s, spec, &dropped);
  EXPECT_EQ(dropped, 8u);
  EXPECT_EQ(wanted.size(), detail::kMaxSecretsPerIngress + 2);
  EXPECT_EQ(wanted.count("b/t0") + wanted.count("b/t1"), 2u);  // the other namespace is not crowded out

  // Per namespace: many Ingresses of one namespace stop at the namespace's cap.
  objects.clear();
  const std::size_t per = detail::kMaxSecretsPerIngress;
  const std::size_t n = detail::kMaxSecretsPerNamespace / per + 2;
  for (std::size_t i = 0; i < n; ++i)
    objects.push_back(ingress("a", "i" + std::to_string(i), many("s" + std::to_string(i) + "-", per)));
  objects.push_back(ingress("b", "modest", many("t", 2)));
  s.replace("ing", objects);
  wanted = detail::wanted_secrets(s, spec, &dropped);
  EXPECT_EQ(wanted.size(), detail::kMaxSecretsPerNamespace + 2);
  EXPECT_EQ(dropped, n * per - detail::kMaxSecretsPerNamespace);
  EXPECT_LE(wanted.size(), detail::kMaxFollowedSecrets);
}

TEST(KubeStore, DefaultClassDecidesWhichIngressesReferenceSecrets) {
  config::IngressSpec spec;
  Store s;
  s.add_scope("ing", ResourceKind::ingress(), Scope{});
  s.add_scope("cls", ResourceKind::ingress_class(), Scope{});
  s.replace("ing",
            {R"({"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"x","namespace":"a"},
                      "spec":{"tls":[{"secretName":"t"}]}})"});
  EXPECT_TRUE(detail::wanted_secrets(s, spec).empty());  // no class, no default class of ours
  s.replace("cls", {R"({"kind":"IngressClass","apiVersion":"networking.k8s.io/v1","metadata":{"name":"p",
                      "annotations":{"ingressclass.kubernetes.io/is-default-class":"true"}},
                      "spec":{"controller":"phigate.io/ingress-controller"}})"});
  EXPECT_EQ(detail::wanted_secrets(s, spec), (std::set<std::string>{"a/t"}));
}

const ResourceKind& kIng = ResourceKind::ingress();

TEST(KubeReflectorParse, ListPageFillsKindAndApiVersion) {
  std::string err;
  const auto p = detail::parse_list_page(
      R"({"kind":"IngressList","apiVersion":"networking.k8s.io/v1","metadata":{"resourceVersion":"42","continue":"c1"},
          "items":[{"metadata":{"name":"a","namespace":"n"}},{},{"kind":"Ingress","metadata":{"name":"b"}}]})",
      kIng, err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->resource_version, "42");
  EXPECT_EQ(p->continue_token, "c1");
  ASSERT_EQ(p->items.size(), 3u);
  EXPECT_EQ(
      p->items[0],
      R"({"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"a","namespace":"n"}})");
  EXPECT_EQ(p->items[1], R"({"kind":"Ingress","apiVersion":"networking.k8s.io/v1"})");
  EXPECT_EQ(p->items[2], R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"b"}})");

  const auto empty =
      detail::parse_list_page(R"({"metadata":{"resourceVersion":"1"},"items":null})", kIng, err);
  ASSERT_TRUE(empty) << err;
  EXPECT_TRUE(empty->items.empty());
  EXPECT_TRUE(empty->continue_token.empty());
}

TEST(KubeReflectorParse, MalformedListPagesRefused) {
  for (const std::string& body : std::vector<std::string>{
           "", "{", "[]", R"({"items":[]})", R"({"metadata":{"resourceVersion":""},"items":[]})",
           R"({"metadata":{"resourceVersion":7},"items":[]})",
           R"({"metadata":{"resourceVersion":"1"},"items":{}})",
           R"({"metadata":{"resourceVersion":"1"},"items":[1]})",
           R"({"metadata":{"resourceVersion":"1"},"items":[{"kind":"Secret","metadata":{"name":"s"}}]})",
           R"({"metadata":{"resourceVersion":"1"},"items":[{"apiVersion":"extensions/v1beta1"}]})"}) {
    std::string err;
    EXPECT_FALSE(detail::parse_list_page(body, kIng, err)) << body;
    EXPECT_FALSE(err.empty()) << body;
  }
}

TEST(KubeReflectorParse, WatchEvents) {
  std::string err;
  auto e = detail::parse_watch_event(
      R"({"type":"ADDED","object":{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"a","resourceVersion":"5"}}})",
      kIng, err);
  ASSERT_TRUE(e) << err;
  EXPECT_EQ(e->type, detail::WatchEvent::Type::Added);
  EXPECT_EQ(e->resource_version, "5");
  EXPECT_EQ(
      e->object,
      R"({"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"a","resourceVersion":"5"}})");

  e = detail::parse_watch_event(
      R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"6"}}})", kIng, err);
  ASSERT_TRUE(e) << err;
  EXPECT_EQ(e->type, detail::WatchEvent::Type::Deleted);
  EXPECT_NE(e->object.find(R"("kind":"Ingress")"), std::string::npos);

  e = detail::parse_watch_event(
      R"({"type":"BOOKMARK","object":{"kind":"Ingress","metadata":{"resourceVersion":"9"}}})", kIng, err);
  ASSERT_TRUE(e) << err;
  EXPECT_EQ(e->type, detail::WatchEvent::Type::Bookmark);
  EXPECT_EQ(e->resource_version, "9");

  e = detail::parse_watch_event(
      R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old\nresource version"}})",
      kIng, err);
  ASSERT_TRUE(e) << err;
  EXPECT_EQ(e->type, detail::WatchEvent::Type::Error);
  EXPECT_TRUE(e->gone);
  EXPECT_EQ(e->message, "too old resource version");  // one line for the log

  e = detail::parse_watch_event(
      R"({"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError"}})", kIng, err);
  ASSERT_TRUE(e) << err;
  EXPECT_FALSE(e->gone);
  EXPECT_EQ(e->message, "code 500 InternalError");
}

TEST(KubeReflectorParse, MalformedWatchLinesRefused) {
  for (const std::string& line : std::vector<std::string>{
           "", "{", "[]", R"({"type":"ADDED"})", R"({"type":7,"object":{}})",
           R"({"type":"ADDED","object":[]})",
           R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})",  // no resourceVersion
           R"({"type":"SOMETHING","object":{"metadata":{"resourceVersion":"1"}}})",
           R"({"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"a","resourceVersion":"1"}}})"}) {
    std::string err;
    EXPECT_FALSE(detail::parse_watch_event(line, kIng, err)) << line;
    EXPECT_FALSE(err.empty()) << line;
  }
}

TEST(KubeReflectorParse, CollectionPaths) {
  EXPECT_EQ(collection_path(ResourceKind::ingress(), "shop"),
            "/apis/networking.k8s.io/v1/namespaces/shop/ingresses");
  EXPECT_EQ(collection_path(ResourceKind::ingress(), ""), "/apis/networking.k8s.io/v1/ingresses");
  EXPECT_EQ(collection_path(ResourceKind::ingress_class(), "shop"),
            "/apis/networking.k8s.io/v1/ingressclasses");
  EXPECT_EQ(collection_path(ResourceKind::secret(), "a"), "/api/v1/namespaces/a/secrets");
  EXPECT_EQ(collection_path(ResourceKind::endpoint_slice(), ""), "/apis/discovery.k8s.io/v1/endpointslices");
}

}  // namespace
}  // namespace phigate::kube
