#include "phigate/ingress/loader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace phigate::ingress {
namespace {

namespace fs = std::filesystem;

const std::string kFixtures = PHIGATE_FIXTURES_DIR;

/// The first diagnostic whose field is `field`, or nullptr.
const config::Diagnostic* find(const config::Diagnostics& diag, std::string_view field) {
  for (const auto& d : diag.entries()) {
    if (d.field == field) return &d;
  }
  return nullptr;
}

LoadResult load(const std::string& text, const std::string& file = "m.yaml") {
  LoadResult r;
  load_text(text, file, r);
  return r;
}

/// A per-test temp folder, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("phigate-ingress-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void write(const fs::path& rel, const std::string& text) const {
    fs::create_directories((path_ / rel).parent_path());
    std::ofstream(path_ / rel) << text;
  }

 private:
  fs::path path_;
};

TEST(IngressLoader, Directory_NestedListJsonLoadedHiddenAndOtherFilesSkipped) {
  const auto r = load_directory(kFixtures + "/tree");
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  EXPECT_EQ(r.files, 4u);  // 10-ingress.yaml, 20-list.yaml, 30-secret.json, nested/deeper/40-slice.yml
  EXPECT_EQ(r.broken_files, 0u);
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  ASSERT_EQ(r.resources.ingress_classes.size(), 1u);
  ASSERT_EQ(r.resources.services.size(), 1u);  // not .kube/x.yaml
  ASSERT_EQ(r.resources.secrets.size(), 1u);
  ASSERT_EQ(r.resources.endpoint_slices.size(), 2u);
  // Sorted paths: 20-list.yaml comes before nested/deeper/40-slice.yml.
  EXPECT_EQ(r.resources.endpoint_slices[0].meta.name, "web-x7k2p");
  EXPECT_EQ(r.resources.endpoint_slices[1].meta.name, "web-v6");

  // A ConfigMap is read (custom-headers, proxy-set-headers); other kinds are listed as ignored.
  ASSERT_EQ(r.resources.config_maps.size(), 1u);
  EXPECT_EQ(r.resources.config_maps[0].meta.key(), "shop/settings");
  EXPECT_EQ(r.resources.config_maps[0].data.at("key"), "dmFsdWU=");  // ConfigMap data is not base64
  ASSERT_EQ(r.ignored.size(), 1u);
  EXPECT_EQ(r.ignored[0].kind, "ServiceAccount");
  EXPECT_EQ(r.ignored[0].name, "shop/web");
  EXPECT_EQ(r.ignored[0].origin.where(), kFixtures + "/tree/20-list.yaml#0.items[2]");
}

TEST(IngressLoader, Directory_OriginsNameFileDocumentAndListItem) {
  const auto r = load_directory(kFixtures + "/tree");
  const auto& ing = r.resources.ingresses.at(0);
  EXPECT_EQ(ing.origin.where(), kFixtures + "/tree/10-ingress.yaml#1");
  EXPECT_EQ(ing.origin.line, 16);
  EXPECT_EQ(r.resources.services.at(0).origin.where(), kFixtures + "/tree/10-ingress.yaml#2");
  EXPECT_EQ(r.resources.endpoint_slices.at(0).origin.where(), kFixtures + "/tree/20-list.yaml#0.items[0]");
  EXPECT_EQ(r.resources.secrets.at(0).origin.where(), kFixtures + "/tree/30-secret.json#0");
}

TEST(IngressLoader, Directory_FieldsAsKubectlWritesThem) {
  const auto r = load_directory(kFixtures + "/tree");
  const auto& ing = r.resources.ingresses.at(0);
  EXPECT_EQ(ing.meta.key(), "shop/web");
  EXPECT_EQ(ing.meta.created, 1709287200);
  EXPECT_EQ(ing.class_name, "phigate");
  EXPECT_EQ(ing.meta.annotations.at("nginx.ingress.kubernetes.io/proxy-body-size"), "8m");
  ASSERT_EQ(ing.rules.size(), 1u);
  EXPECT_EQ(ing.rules[0].host, "Shop.Example.com");  // lower-cased by translate(), not here
  ASSERT_EQ(ing.rules[0].paths.size(), 2u);
  const auto& p0 = ing.rules[0].paths[0];
  EXPECT_EQ(p0.path, "/");
  EXPECT_EQ(p0.type, config::PathType::Prefix);
  ASSERT_TRUE(p0.backend.service);
  EXPECT_EQ(p0.backend.service->name, "web");
  EXPECT_EQ(p0.backend.service->port_name, "http");
  const auto& p1 = ing.rules[0].paths[1];
  EXPECT_EQ(p1.type, config::PathType::Exact);
  EXPECT_EQ(p1.backend.service->port_number, 8443);
  ASSERT_EQ(ing.tls.size(), 1u);
  EXPECT_EQ(ing.tls[0].secret_name, "shop-tls");
  EXPECT_EQ(ing.tls[0].hosts, std::vector<std::string>{"shop.example.com"});
  EXPECT_TRUE(ing.problems.empty());

  const auto& ic = r.resources.ingress_classes.at(0);
  EXPECT_EQ(ic.controller, "phigate.io/ingress-controller");
  EXPECT_TRUE(ic.is_default);

  const auto& svc = r.resources.services.at(0);
  ASSERT_EQ(svc.ports.size(), 2u);
  EXPECT_EQ(svc.ports[0].name, "http");
  EXPECT_EQ(svc.ports[0].port, 80);
  EXPECT_EQ(svc.ports[0].target_port, "8080");
  EXPECT_EQ(svc.ports[1].target_port, "admin");

  const auto& secret = r.resources.secrets.at(0);
  EXPECT_EQ(secret.type, "kubernetes.io/tls");
  EXPECT_EQ(secret.data.at("tls.crt").rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  EXPECT_EQ(secret.data.at("tls.key").rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);

  const auto& slice = r.resources.endpoint_slices.at(0);
  EXPECT_EQ(slice.service_name, "web");
  EXPECT_EQ(slice.address_type, "IPv4");
  ASSERT_EQ(slice.endpoints.size(), 2u);
  EXPECT_TRUE(slice.endpoints[0].ready);
  EXPECT_FALSE(slice.endpoints[1].ready);
  ASSERT_EQ(slice.ports.size(), 2u);
  EXPECT_EQ(slice.ports[1].name, "admin");
  EXPECT_EQ(slice.ports[1].port, 9443);
}

TEST(IngressLoader, Directory_BrokenYamlIsAnErrorWithFileAndLineOthersStillLoad) {
  const auto r = load_directory(kFixtures + "/broken");
  EXPECT_EQ(r.files, 2u);
  EXPECT_EQ(r.broken_files, 1u);
  ASSERT_EQ(r.diagnostics.error_count(), 1u) << r.diagnostics.to_string();
  const auto& d = r.diagnostics.entries().at(0);
  EXPECT_EQ(d.file, kFixtures + "/broken/b-bad.yaml");
  EXPECT_GT(d.line, 5);
  EXPECT_NE(d.message.find("invalid YAML"), std::string::npos);
  ASSERT_EQ(r.resources.services.size(), 1u);
  EXPECT_EQ(r.resources.services[0].meta.key(), "default/ok");
}

TEST(IngressLoader, Directory_MissingFolderIsAnError) {
  const auto r = load_directory(kFixtures + "/does-not-exist");
  EXPECT_TRUE(r.diagnostics.has_errors());
  EXPECT_EQ(r.files, 0u);
}

TEST(IngressLoader, Directory_ConfigMapMountReadOnceThroughVisibleNames) {
  // kubelet's layout: dir/..2024_01_01_00_00_00.1/x.yaml, dir/..data -> that, dir/x.yaml -> ..data/x.yaml
  TempDir t;
  t.write("..2024_01_01_00_00_00.1/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: mounted}\n");
  fs::create_directory_symlink("..2024_01_01_00_00_00.1", t.path() / "..data");
  fs::create_symlink("..data/svc.yaml", t.path() / "svc.yaml");
  const auto r = load_directory(t.path().string());
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.services.size(), 1u);
  EXPECT_EQ(r.resources.services[0].origin.file, (t.path() / "svc.yaml").string());
}

TEST(IngressLoader, Directory_SymlinkLoopEnds) {
  TempDir t;
  t.write("a/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n");
  fs::create_directory_symlink("..", t.path() / "a" / "up");
  const auto r = load_directory(t.path().string());
  EXPECT_EQ(r.resources.services.size(), 1u);
}

TEST(IngressLoader, DirectoryLoader_ReparsesOnlyChangedFilesSameResult) {
  TempDir t;
  const std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata: {name: NAME}\nspec: {ports: [{port: 80}]}\n";
  const auto named = [&](const std::string& n) {
    return svc.substr(0, svc.find("NAME")) + n + svc.substr(svc.find("NAME") + 4);
  };
  t.write("a.yaml", named("a"));
  t.write("b.yaml", named("b"));
  t.write("c.yaml", "kind: [broken");
  DirectoryLoader loader;
  const auto first = loader.load(t.path().string());
  EXPECT_EQ(first.parsed_files, 3u);
  EXPECT_EQ(first.files, 3u);
  EXPECT_EQ(first.broken_files, 1u);
  EXPECT_EQ(first.resources.services.size(), 2u);

  const auto again = loader.load(t.path().string());
  EXPECT_EQ(again.parsed_files, 0u);
  EXPECT_EQ(again.files, 3u);
  EXPECT_EQ(again.broken_files, 1u);
  EXPECT_EQ(again.diagnostics.error_count(), 1u);  // cached diagnostics are reported again
  EXPECT_EQ(again.diagnostics.to_string(), first.diagnostics.to_string());
  ASSERT_EQ(again.resources.services.size(), 2u);

  t.write("b.yaml", named("x"));  // same size, new bytes
  fs::remove(t.path() / "a.yaml");
  const auto changed = loader.load(t.path().string());
  EXPECT_EQ(changed.parsed_files, 1u);
  ASSERT_EQ(changed.resources.services.size(), 1u);
  EXPECT_EQ(changed.resources.services[0].meta.name, "x");
  const auto plain = load_directory(t.path().string());
  EXPECT_EQ(plain.diagnostics.to_string(), changed.diagnostics.to_string());
  EXPECT_EQ(plain.resources.services.size(), changed.resources.services.size());
}

TEST(IngressLoader, MultiDocument_EmptyDocumentsKeepTheirIndex) {
  const auto r = load("---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n");
  ASSERT_EQ(r.resources.services.size(), 1u);
  EXPECT_EQ(r.resources.services[0].origin.where(), "m.yaml#1");
  EXPECT_EQ(r.resources.services[0].origin.line, 3);
}

TEST(IngressLoader, TypedList_ItemsWithoutKindTakeItFromTheList) {
  const auto r = load(R"({"apiVersion": "networking.k8s.io/v1", "kind": "IngressList",
    "items": [{"metadata": {"name": "a", "namespace": "x"}, "spec": {"ingressClassName": "phigate"}}]})",
                      "list.json");
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  EXPECT_EQ(r.resources.ingresses[0].meta.key(), "x/a");
  EXPECT_EQ(r.resources.ingresses[0].origin.where(), "list.json#0.items[0]");
}

TEST(IngressLoader, UnsupportedApiVersionOfAKnownKind_WarnsAndIgnores) {
  const auto r = load("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\n");
  EXPECT_TRUE(r.resources.ingresses.empty());
  EXPECT_FALSE(r.diagnostics.has_errors());
  ASSERT_EQ(r.diagnostics.entries().size(), 1u);
  EXPECT_EQ(r.diagnostics.entries()[0].severity, config::Severity::Warning);
  ASSERT_EQ(r.ignored.size(), 1u);
  EXPECT_EQ(r.ignored[0].api_version, "extensions/v1beta1");
  EXPECT_EQ(r.ignored[0].name, "default/old");
}

TEST(IngressLoader, OtherKinds_IgnoredWithoutDiagnostics) {
  const auto r = load(
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n---\n"
      "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\n");
  EXPECT_TRUE(r.diagnostics.entries().empty());
  ASSERT_EQ(r.ignored.size(), 2u);
  EXPECT_EQ(r.ignored[0].kind, "Deployment");
  EXPECT_EQ(r.ignored[1].origin.where(), "m.yaml#1");
}

TEST(IngressLoader, WrongFieldTypes_ErrorsNameFileDocResourceAndFieldPath) {
  const auto r = load(R"(apiVersion: v1
kind: Service
metadata: {name: ignore-me}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
  - host: a.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 80}}}
      - path: /x
        pathType: Regex
        backend: {service: {name: web, port: {number: http}}}
  tls: {hosts: [a.example]}
)");
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  const auto* d = find(r.diagnostics, "spec.rules[0].http.paths[1].pathType");
  ASSERT_NE(d, nullptr) << r.diagnostics.to_string();
  EXPECT_EQ(d->file, "m.yaml#1");
  EXPECT_EQ(d->line, 19);
  EXPECT_EQ(d->resource, "Ingress shop/web");
  EXPECT_NE(find(r.diagnostics, "spec.rules[0].http.paths[1].backend.service.port.number"), nullptr);
  EXPECT_NE(find(r.diagnostics, "spec.tls"), nullptr);
  EXPECT_EQ(r.resources.ingresses[0].problems,
            (std::vector<std::string>{"spec.tls", "spec.rules[0].http.paths[1].pathType",
                                      "spec.rules[0].http.paths[1].backend.service.port.number",
                                      "spec.rules[0].http.paths[1].backend.service.port"}));
  // The rule and both paths are kept so that translate() can claim them (fail closed).
  EXPECT_EQ(r.resources.ingresses[0].rules.at(0).paths.size(), 2u);
}

TEST(IngressLoader, Metadata_BadTimestampAndMissingNameAreErrors) {
  const auto r = load(
      "apiVersion: v1\nkind: Service\nmetadata: {name: a, creationTimestamp: yesterday}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n");
  ASSERT_EQ(r.resources.services.size(), 1u);  // the nameless one is dropped
  EXPECT_EQ(r.resources.services[0].problems, std::vector<std::string>{"metadata.creationTimestamp"});
  const auto* d = find(r.diagnostics, "metadata.name");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->file, "m.yaml#1");
}

TEST(IngressLoader, Backend_ResourceIsKeptAsUnsupportedAndPortNeedsExactlyOne) {
  const auto r = load(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: a}
spec:
  defaultBackend: {resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: static}}
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80, name: http}}}}
)");
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  const auto& ing = r.resources.ingresses[0];
  ASSERT_TRUE(ing.default_backend);
  EXPECT_FALSE(ing.default_backend->service);
  EXPECT_NE(find(r.diagnostics, "spec.rules[0].http.paths[0].backend.service.port"), nullptr);
}

TEST(IngressLoader, MissingPathType_WarnsAndIsImplementationSpecific) {
  const auto r = load(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: a}
spec:
  rules:
  - http:
      paths:
      - {path: /, backend: {service: {name: s, port: {number: 80}}}}
)");
  EXPECT_FALSE(r.diagnostics.has_errors());
  EXPECT_EQ(r.resources.ingresses.at(0).rules.at(0).paths.at(0).type,
            config::PathType::ImplementationSpecific);
  EXPECT_NE(find(r.diagnostics, "spec.rules[0].http.paths[0].pathType"), nullptr);
}

TEST(IngressLoader, Secret_BadBase64IsAnErrorOnThatSecretStringDataOverlays) {
  const auto r = load(R"(apiVersion: v1
kind: Secret
metadata: {name: bad}
type: kubernetes.io/tls
data: {tls.crt: "not base64!", tls.key: Zm9v}
---
apiVersion: v1
kind: Secret
metadata: {name: good}
data: {a: Zm9v, b: YmFy}
stringData: {b: plain}
)");
  ASSERT_EQ(r.resources.secrets.size(), 2u);
  const auto& bad = r.resources.secrets[0];
  EXPECT_EQ(bad.problems, std::vector<std::string>{"data.tls.crt"});
  const auto* d = find(r.diagnostics, "data.tls.crt");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->resource, "Secret default/bad");
  EXPECT_EQ(d->message.find("not base64"), std::string::npos);  // secret material stays out of logs
  const auto& good = r.resources.secrets[1];
  EXPECT_TRUE(good.problems.empty());
  EXPECT_EQ(good.type, "Opaque");
  EXPECT_EQ(good.data.at("a"), "foo");
  EXPECT_EQ(good.data.at("b"), "plain");
}

TEST(IngressLoader, EndpointSlice_ReadyAbsentIsReadyFqdnIgnoredBadAddressIsError) {
  const auto r = load(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: null, port: 8080}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
  conditions: {ready: null}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s2, labels: {kubernetes.io/service-name: web}}
addressType: FQDN
endpoints: [{addresses: [a.example]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s3, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
endpoints: [{addresses: [10.0.0.3]}]
)");
  ASSERT_EQ(r.resources.endpoint_slices.size(), 2u);
  const auto& s1 = r.resources.endpoint_slices[0];
  EXPECT_TRUE(s1.problems.empty());
  EXPECT_TRUE(s1.endpoints.at(0).ready);
  EXPECT_TRUE(s1.endpoints.at(1).ready);
  EXPECT_EQ(s1.ports.at(0).name, "");
  EXPECT_EQ(s1.ports.at(0).port, 8080);
  EXPECT_EQ(r.resources.endpoint_slices[1].problems, std::vector<std::string>{"endpoints[0].addresses[0]"});
  EXPECT_NE(find(r.diagnostics, "addressType"), nullptr);  // the FQDN warning
}

TEST(IngressLoader, NotAnObject_IsAnError) {
  const auto r = load("- just\n- a list\n");
  EXPECT_TRUE(r.diagnostics.has_errors());
  EXPECT_EQ(r.diagnostics.entries().at(0).file, "m.yaml#0");
}

TEST(IngressLoader, Metadata_MissingIsRequiredAtTheObjectsLine) {
  const auto r = load(
      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n# no metadata\n"
      "apiVersion: v1\nkind: Service\n");
  const auto* d = find(r.diagnostics, "metadata.name");
  ASSERT_NE(d, nullptr) << r.diagnostics.to_string();
  EXPECT_EQ(d->file, "m.yaml#1");
  EXPECT_EQ(d->line, 6);  // the object's first line, not 0
}

TEST(IngressLoader, Yaml_ScalarStylesCommentsTagsAndNullsReadAsKubectlDoes) {
  const auto r = load(R"(# leading comment
apiVersion: v1   # trailing comment
kind: Service
metadata:
  name: !!str web
  namespace: 'shop'
  annotations:
    literal: |
      line one
        indented "two"
    folded: >-
      folded
      text
    double: "tab\there \u00e9 \"q\""
    single: 'it''s'
    plain: a multi
      line plain scalar
    tagged-number: !!str 80
    quoted-null: "null"
    empty:
    tilde: ~
    ? explicit key
    : explicit value
  labels: {app: web, "tier": 'front', gone: null}
spec:
  type: "NodePort"
  ports:
  - {name: http, port: 80, targetPort: "8080"}
  - name: admin
    port: !!int "8443"
)");
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.services.size(), 1u);
  const auto& s = r.resources.services[0];
  EXPECT_EQ(s.meta.key(), "shop/web");
  EXPECT_EQ(s.origin.line, 2);
  EXPECT_EQ(s.meta.annotations_line, 8);
  const auto& a = s.meta.annotations;
  EXPECT_EQ(a.at("literal"), "line one\n  indented \"two\"\n");
  EXPECT_EQ(a.at("folded"), "folded text");
  EXPECT_EQ(a.at("double"), "tab\there \xc3\xa9 \"q\"");
  EXPECT_EQ(a.at("single"), "it's");
  EXPECT_EQ(a.at("plain"), "a multi line plain scalar");
  EXPECT_EQ(a.at("tagged-number"), "80");
  EXPECT_EQ(a.at("quoted-null"), "null");
  EXPECT_EQ(a.at("empty"), "");
  EXPECT_EQ(a.at("tilde"), "");
  EXPECT_EQ(a.at("explicit key"), "explicit value");
  EXPECT_EQ(s.meta.labels,
            (std::map<std::string, std::string>{{"app", "web"}, {"tier", "front"}, {"gone", ""}}));
  EXPECT_EQ(s.type, "NodePort");
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[0].target_port, "8080");
  EXPECT_EQ(s.ports[1].port, 8443);
}

TEST(IngressLoader, Yaml_NullNameIsRequiredQuotedNullIsAName) {
  const auto r = load(
      "apiVersion: v1\nkind: Service\nmetadata: {name: ~}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: 'null'}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: ''}\n");
  ASSERT_EQ(r.resources.services.size(), 1u);
  EXPECT_EQ(r.resources.services[0].meta.name, "null");
  ASSERT_EQ(r.diagnostics.error_count(), 2u) << r.diagnostics.to_string();
  EXPECT_EQ(r.diagnostics.entries()[0].message, "required");
  EXPECT_EQ(r.diagnostics.entries()[1].message, "must not be empty");
  EXPECT_EQ(r.diagnostics.entries()[1].file, "m.yaml#2");
  EXPECT_EQ(r.diagnostics.entries()[1].line, 11);
}

TEST(IngressLoader, Yaml_JsonCompactTabbedCrlfAndByteOrderMark) {
  const auto r = load(
      "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"},"
      "\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":8080}]}}\n",
      "compact.json");
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.services.size(), 1u);
  EXPECT_EQ(r.resources.services[0].ports.at(0).target_port, "8080");

  const auto tabs = load(
      "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Service\",\n\t\"metadata\": {\n\t\t\"name\": "
      "\"b\"\n\t}\n}\n");
  EXPECT_FALSE(tabs.diagnostics.has_errors()) << tabs.diagnostics.to_string();
  ASSERT_EQ(tabs.resources.services.size(), 1u);

  const auto crlf = load(
      "\xef\xbb\xbf"
      "apiVersion: v1\r\nkind: Service\r\nmetadata:\r\n  name: c\r\n"
      "  annotations:\r\n    x: |\r\n      one\r\n      two\r\n");
  EXPECT_FALSE(crlf.diagnostics.has_errors()) << crlf.diagnostics.to_string();
  ASSERT_EQ(crlf.resources.services.size(), 1u);
  EXPECT_EQ(crlf.resources.services[0].meta.name, "c");
  EXPECT_EQ(crlf.resources.services[0].meta.annotations.at("x"), "one\ntwo\n");
}

TEST(IngressLoader, Yaml_EmptyAndCommentOnlyFilesHaveNoObjectsAndNoErrors) {
  for (const char* text : {"", "# nothing here\n", "---\n", "---\n...\n"}) {
    const auto r = load(text);
    EXPECT_TRUE(r.diagnostics.entries().empty()) << text << r.diagnostics.to_string();
    EXPECT_EQ(r.files, 1u);
    EXPECT_EQ(r.broken_files, 0u);
    EXPECT_TRUE(r.ignored.empty());
  }
}

TEST(IngressLoader, Anchors_AliasesReadAsTheAnchoredNode) {
  const auto r = load(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: &labels {kubernetes.io/service-name: web}
  annotations: *labels
addressType: IPv4
ports: [&port {name: http, port: 8080}, *port]
endpoints:
- &ep {addresses: [&addr 10.0.0.1, *addr], conditions: {ready: &ready false}}
- *ep
- {addresses: [10.0.0.2], conditions: {ready: *ready}}
)");
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.endpoint_slices.size(), 1u);
  const auto& s = r.resources.endpoint_slices[0];
  EXPECT_EQ(s.service_name, "web");
  EXPECT_EQ(s.meta.annotations.at("kubernetes.io/service-name"), "web");
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[1].port, 8080);
  ASSERT_EQ(s.endpoints.size(), 3u);
  EXPECT_EQ(s.endpoints[1].addresses, (std::vector<std::string>{"10.0.0.1", "10.0.0.1"}));
  EXPECT_FALSE(s.endpoints[1].ready);
  EXPECT_FALSE(s.endpoints[2].ready);
}

TEST(IngressLoader, Anchors_UnknownRecursiveAndOtherDocumentsAliasesBreakTheFile) {
  for (const char* text : {"apiVersion: v1\nkind: Service\nmetadata: *nope\n",
                           "apiVersion: v1\nkind: Service\nmetadata: &m {name: x, self: *m}\n",
                           "apiVersion: v1\nkind: Service\nmetadata: &m {name: a}\n---\n"
                           "apiVersion: v1\nkind: Service\nmetadata: *m\n"}) {
    const auto r = load(text);
    EXPECT_EQ(r.broken_files, 1u) << text;
    EXPECT_TRUE(r.resources.services.empty()) << text;
    ASSERT_EQ(r.diagnostics.error_count(), 1u) << text;
    EXPECT_EQ(r.diagnostics.entries()[0].file, "m.yaml");
    EXPECT_GE(r.diagnostics.entries()[0].line, 3) << text;
    EXPECT_NE(r.diagnostics.entries()[0].message.find("alias *"), std::string::npos)
        << r.diagnostics.to_string();
  }
}

TEST(IngressLoader, Anchors_AliasBombIsRefusedAsABrokenFile) {
  // "Billion laughs": 9 levels of 10 aliases each stand for 10^9 nodes in under 1 KiB.
  std::string text =
      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    const auto prev = "*l" + std::to_string(i - 1);
    text += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += (k ? ", " : "") + prev;
    text += "]\n";
  }
  const auto r = load(text);
  EXPECT_EQ(r.broken_files, 1u);
  EXPECT_TRUE(r.resources.services.empty());
  ASSERT_EQ(r.diagnostics.error_count(), 1u) << r.diagnostics.to_string();
  const auto& d = r.diagnostics.entries()[0];
  EXPECT_NE(d.message.find("aliases expand to more than"), std::string::npos) << d.message;
  EXPECT_GT(d.line, 4);
  EXPECT_LE(d.line, 13);
}

TEST(IngressLoader, BrokenYaml_TopLevelFlowThenCommaIsAnErrorNotUnboundedMemory) {
  // yaml-cpp 0.7 (the previous parser) allocated until killed on these few bytes.
  const auto r = load("{},\n");
  EXPECT_EQ(r.broken_files, 1u);
  ASSERT_EQ(r.diagnostics.error_count(), 1u);
  EXPECT_EQ(r.diagnostics.entries()[0].line, 1);
  EXPECT_NE(r.diagnostics.entries()[0].message.find("invalid YAML"), std::string::npos);
}

TEST(IngressLoader, BrokenYaml_BadUtf8AndDeepNestingAreErrorsWithLine) {
  const auto utf8 = load("apiVersion: v1\nkind: Service\nmetadata: {name: \"caf\xe9\"}\n");
  EXPECT_EQ(utf8.broken_files, 1u);
  ASSERT_EQ(utf8.diagnostics.error_count(), 1u);
  EXPECT_EQ(utf8.diagnostics.entries()[0].line, 3);
  EXPECT_NE(utf8.diagnostics.entries()[0].message.find("UTF-8"), std::string::npos);

  const auto deep = load("a: b\nc: " + std::string(5000, '[') + std::string(5000, ']') + "\n");
  EXPECT_EQ(deep.broken_files, 1u);
  ASSERT_EQ(deep.diagnostics.error_count(), 1u);
  EXPECT_EQ(deep.diagnostics.entries()[0].line, 2);
  EXPECT_NE(deep.diagnostics.entries()[0].message.find("nested deeper"), std::string::npos);
}

TEST(IngressLoader, DecodeBase64_StrictAsTheApiServer) {
  EXPECT_EQ(decode_base64(""), "");
  EXPECT_EQ(decode_base64("Zg=="), "f");
  EXPECT_EQ(decode_base64("Zm8="), "fo");
  EXPECT_EQ(decode_base64("Zm9v"), "foo");
  EXPECT_EQ(decode_base64("Zm9v\nYmFy\r\n"), "foobar");
  EXPECT_EQ(decode_base64("+/+/"), std::string("\xfb\xff\xbf"));
  for (const char* bad :
       {"Zg", "Zg=", "Z===", "Zm9", "Zm9v!", "Zg==Zg==", " Zg==", "Zm9v YmFy", "Zg=a", "====", "-_-_"}) {
    EXPECT_FALSE(decode_base64(bad)) << bad;
  }
}

TEST(IngressLoader, ParseRfc3339_ZoneOffsetsFractionsAndRanges) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2024-03-01T10:00:00Z"), 1709287200);
  EXPECT_EQ(parse_rfc3339("2024-02-29T23:59:59Z"), 1709251199);
  EXPECT_EQ(parse_rfc3339("2024-03-01T12:00:00.5+02:00"), 1709287200);
  EXPECT_EQ(parse_rfc3339("2000-01-01T00:00:00-05:30"), 946704600);
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59z"), -1);
  for (const char* bad :
       {"", "2024-03-01", "2024-03-01 10:00:00Z", "2024-03-01T10:00:00", "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z", "2024-03-01T24:00:00Z", "2024-03-01T10:00:60Z", "2024-03-01T10:00:00.Z",
        "2024-03-01T10:00:00+0200", "2024-03-01T10:00:00ZZ"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

}  // namespace
}  // namespace phigate::ingress

namespace phigate::ingress {
namespace {

TEST(IngressLoaderHealth, EndpointSlice_ConditionsServingAndTerminatingWithApiDefaults) {
  const auto r = load(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.0.3]
  conditions: {ready: false, serving: false, terminating: true}
- addresses: [10.0.0.4]
  conditions: {ready: true, serving: null, terminating: null}
- addresses: [10.0.0.5]
  conditions: {terminating: maybe}
)");
  ASSERT_EQ(r.resources.endpoint_slices.size(), 1u);
  const auto& e = r.resources.endpoint_slices[0].endpoints;
  ASSERT_EQ(e.size(), 5u);
  // nil ready and serving are true, nil terminating is false (Kubernetes API).
  EXPECT_TRUE(e[0].ready && e[0].serving && !e[0].terminating);
  EXPECT_TRUE(!e[1].ready && e[1].serving && e[1].terminating);
  EXPECT_TRUE(!e[2].ready && !e[2].serving && e[2].terminating);
  EXPECT_TRUE(e[3].ready && e[3].serving && !e[3].terminating);
  bool reported = false;  // "maybe" is not a boolean
  for (const auto& d : r.diagnostics.entries())
    reported = reported || d.field.find("terminating") != std::string::npos;
  EXPECT_TRUE(reported) << r.diagnostics.to_string();
}

TEST(IngressLoader, AnnotationLines_EachKeyItsOwnLineManifestFilesOnly) {
  const auto r = load(
      "apiVersion: networking.k8s.io/v1\n"                            // 1
      "kind: Ingress\n"                                               // 2
      "metadata:\n"                                                   // 3
      "  name: a\n"                                                   // 4
      "  namespace: ns\n"                                             // 5
      "  annotations:\n"                                              // 6
      "    phigate.io/phi: \"true\"\n"                                // 7
      "    nginx.ingress.kubernetes.io/ssl-redirect: \"false\"\n"     // 8
      "\n"                                                            // 9
      "    nginx.ingress.kubernetes.io/allowlist-source-range: >-\n"  // 10
      "      10.0.0.0/8\n"                                            // 11
      "spec:\n"                                                       // 12
      "  rules:\n"                                                    // 13
      "  - host: a.example\n"                                         // 14
      "    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: s, port: { number: 80 } "
      "} } }] }\n");
  ASSERT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.ingresses.size(), 1u);
  const auto& m = r.resources.ingresses[0].meta;
  EXPECT_EQ(m.annotations_line, 7);
  EXPECT_EQ(m.annotation_lines.size(), 3u);
  EXPECT_EQ(m.annotation_lines.at("phigate.io/phi"), 7);
  EXPECT_EQ(m.annotation_lines.at("nginx.ingress.kubernetes.io/ssl-redirect"), 8);
  EXPECT_EQ(m.annotation_lines.at("nginx.ingress.kubernetes.io/allowlist-source-range"), 10);

  // Objects from the API server (JSON) carry no lines: nothing is recorded.
  LoadResult j;
  load_json(
      R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"a","namespace":"ns",)"
      R"("annotations":{"phigate.io/phi":"true"}},"spec":{"rules":[{"host":"a.example"}]}})",
      "kubernetes:Ingress ns/a", j);
  ASSERT_EQ(j.resources.ingresses.size(), 1u) << j.diagnostics.to_string();
  EXPECT_EQ(j.resources.ingresses[0].meta.annotations.size(), 1u);
  EXPECT_TRUE(j.resources.ingresses[0].meta.annotation_lines.empty());
}

}  // namespace
}  // namespace phigate::ingress
