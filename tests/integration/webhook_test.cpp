// The validating admission webhook (ingress.webhook): the real binary, curl as the API server
// (AdmissionReview v1 over verified TLS), refused with the messages `phigate validate` prints.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/certs.hpp"
#include "support/net.hpp"
#include "support/plain_client.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/tls_client.hpp"

namespace phigate::test {
namespace {

using namespace std::chrono_literals;

const std::string kBadAnnotation = "nginx.ingress.kubernetes.io/whitelist-source-range";

std::string ingress_yaml(const std::string& name, const std::string& host,
                         const std::string& annotation_value) {
  std::string y = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
                  "\n  namespace: default\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n";
  if (!annotation_value.empty())
    y += "  annotations:\n    " + kBadAnnotation + ": \"" + annotation_value + "\"\n";
  return y + "spec:\n  ingressClassName: phigate\n  rules:\n  - host: " + host +
         "\n    http:\n      paths:\n      - { path: /, pathType: Prefix, backend: { service: { name: web, "
         "port: "
         "{ number: 80 } } } }\n";
}

std::string ingress_json(const std::string& name, const std::string& host,
                         const std::string& annotation_value,
                         const std::string& created = "2026-01-01T00:00:00Z") {
  std::string j = R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":")" + name +
                  R"(","namespace":"default","creationTimestamp":")" + created + R"(")";
  if (!annotation_value.empty())
    j += R"(,"annotations":{")" + kBadAnnotation + R"(":")" + annotation_value + "\"}";
  return j + R"(},"spec":{"ingressClassName":"phigate","rules":[{"host":")" + host +
         R"(","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}})";
}

std::string review(const std::string& uid, const std::string& operation, const std::string& object,
                   const std::string& kind = "Ingress", const std::string& group = "networking.k8s.io") {
  const bool del = operation == "DELETE";
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":")" + uid +
         R"(","kind":{"group":")" + group + R"(","version":"v1","kind":")" + kind +
         R"("},"namespace":"default","name":"x","operation":")" + operation + R"(","object":)" +
         (del ? "null" : object) + R"(,"oldObject":)" + (del ? object : "null") + "}}";
}

const std::string kService =
    "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\n"
    "spec:\n  ports: [{ name: http, port: 80 }]\n";

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = make_ca(dir_.path(), "webhook test CA");
    cert_ = make_leaf(dir_.path(), ca_, "phigate-webhook.phigate.svc",
                      {"phigate-webhook.phigate.svc", "127.0.0.1"});
    dir_.write("manifests/service.yaml", kService);
    dir_.write("manifests/taken.yaml", ingress_yaml("taken", "taken.example", ""));
  }

  std::string config(const std::string& webhook) const {
    return "listeners:\n  https: [\"127.0.0.1:0\"]\n  admin: \"127.0.0.1:0\"\nworkers: 1\nlog: { level: "
           "debug }\n"
           "tls:\n  default_certificate: { cert: " +
           cert_.cert + ", key: " + cert_.key + " }\ningress:\n  dir: " + dir_.path("manifests") +
           "\n  webhook: " + webhook + "\nroutes: []\n";
  }

  /// Starts phigate with the webhook on a kernel-chosen port; reads it from the ready line.
  void start() {
    const auto path = dir_.write(
        "phigate.yaml",
        config("{ listen: \"127.0.0.1:0\", certificate: " + cert_.cert + ", key: " + cert_.key + " }"));
    pg_ = std::make_unique<Process>(Process::start({bin("phigate"), "run", "--config", path}));
    const auto line = pg_->wait_for_line("phigate ready", 20s);
    ASSERT_TRUE(line) << pg_->output();
    const auto at = line->find(" webhook=");
    ASSERT_NE(at, std::string::npos) << *line;
    const auto addr = line->substr(at + 9, line->find(' ', at + 9) - at - 9);
    const auto hp = parse_host_port(addr);
    ASSERT_TRUE(hp) << *line;
    port_ = hp->port;
    ASSERT_TRUE(pg_->wait_for_line("webhook listening on 127.0.0.1:" + std::to_string(port_), 1s));
  }

  std::string url(const std::string& path = "/validate") const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// curl as the API server: POST with --cacert; stdout is the body, then "\n" and the status.
  RunResult post(const std::string& body, std::vector<std::string> extra = {},
                 const std::string& content_type = "application/json") {
    const auto file = dir_.write("body-" + std::to_string(++bodies_) + ".json", body);
    std::vector<std::string> argv = {"curl",          "-sS",      "--cacert", ca_.cert,
                                     "--max-time",    "20",       "-H",       "Content-Type: " + content_type,
                                     "--data-binary", "@" + file, "-w",       "\n%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url());
    return run(argv, {.timeout = 30s});
  }

  static int status_of(const RunResult& r) {
    const auto nl = r.out.rfind('\n');
    return nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1);
  }
  static std::string body_of(const RunResult& r) { return r.out.substr(0, r.out.rfind('\n')); }

  TempDir dir_;
  CertPaths ca_, cert_;
  std::unique_ptr<Process> pg_;
  std::uint16_t port_ = 0;
  int bodies_ = 0;
};

/// The "Ingress ns/name: field: message" part of each error line `phigate validate` printed
/// about `resource` (validate names the manifest file, the webhook "admission:Ingress ns/name").
std::vector<std::string> error_tails(const std::string& text, const std::string& resource) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const auto line = text.substr(start, end - start);
    start = end + 1;
    const auto at = line.find(": error: " + resource + ": ");
    if (at != std::string::npos) out.push_back(line.substr(at + 9));
  }
  return out;
}

/// JSON-unescapes the few escapes our messages can contain ("\n" between messages, \" and \\).
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out += c == 'n' ? '\n' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

TEST_F(WebhookTest, ValidIngress_Allowed) {
  start();
  const auto r = post(review("uid-ok", "CREATE", ingress_json("good", "good.example", "")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(status_of(r), 200);
  const auto body = body_of(r);
  EXPECT_NE(body.find(R"("uid":"uid-ok")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("allowed":true)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview")"), std::string::npos);
}

TEST_F(WebhookTest, BadAnnotation_DeniedWithValidatesMessage) {
  start();
  const auto r =
      post(review("uid-bad", "CREATE", ingress_json("bad", "bad.example", "10.0.0.0/8, not-a-cidr")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(status_of(r), 200);
  const auto body = body_of(r);
  EXPECT_NE(body.find(R"("allowed":false)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("code":400)"), std::string::npos) << body;
  const auto m = body.find(R"("message":")");
  ASSERT_NE(m, std::string::npos) << body;
  const auto message = unescape(body.substr(m + 11, body.find("\"}", m) - m - 11));

  // The same manifest through `phigate validate --ingress-dir`.
  dir_.write("check/service.yaml", kService);
  dir_.write("check/bad.yaml", ingress_yaml("bad", "bad.example", "10.0.0.0/8, not-a-cidr"));
  const auto v = run({bin("phigate"), "validate", "--ingress-dir", dir_.path("check")});
  EXPECT_EQ(v.exit_code, 1) << v.out;
  const auto expected = error_tails(v.out, "Ingress default/bad");
  ASSERT_FALSE(expected.empty()) << v.out;
  EXPECT_EQ(error_tails(message, "Ingress default/bad"), expected) << message << "\n---\n" << v.out;
  EXPECT_NE(message.find("admission:Ingress default/bad"), std::string::npos) << message;
  EXPECT_TRUE(pg_->wait_for_line("webhook: review denied (1 errors)", 5s)) << pg_->output();
}

TEST_F(WebhookTest, ConflictWarns_DeleteAndOtherKindsAllowed) {
  start();
  auto r =
      post(review("uid-c", "CREATE", ingress_json("second", "taken.example", "", "2026-06-01T00:00:00Z")));
  auto body = body_of(r);
  EXPECT_NE(body.find(R"("allowed":true)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("warnings":[)"), std::string::npos) << body;
  EXPECT_NE(body.find("claimed by Ingress default/taken (kept) and default/second (ignored)"),
            std::string::npos)
      << body;

  r = post(review("uid-d", "DELETE", ingress_json("bad", "bad.example", "not-a-cidr")));
  body = body_of(r);
  EXPECT_NE(body.find(R"("uid":"uid-d","allowed":true)"), std::string::npos) << body;

  r = post(review("uid-s", "CREATE", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}})",
                  "Service", ""));
  body = body_of(r);
  EXPECT_NE(body.find(R"("uid":"uid-s","allowed":true)"), std::string::npos) << body;
}

TEST_F(WebhookTest, WrongRequests_404_405_400_413_415) {
  start();
  const auto file = dir_.write("ok.json", review("u", "CREATE", ingress_json("good", "good.example", "")));
  const auto code = [&](std::vector<std::string> args, const std::string& path) {
    std::vector<std::string> argv = {"curl", "-sS", "--cacert",  ca_.cert, "--max-time",
                                     "20",   "-o",  "/dev/null", "-w",     "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url(path));
    const auto r = run(argv, {.timeout = 30s});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  const std::vector<std::string> json = {"-H", "Content-Type: application/json", "--data-binary", "@" + file};
  EXPECT_EQ(code(json, "/mutate"), "404");
  EXPECT_EQ(code({}, "/validate"), "405");
  EXPECT_EQ(
      code({"-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", "@" + file}, "/validate"),
      "405");
  EXPECT_EQ(code({"-H", "Content-Type: text/plain", "--data-binary", "@" + file}, "/validate"), "415");

  auto r = post("{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{}}");
  EXPECT_EQ(status_of(r), 400);
  EXPECT_NE(body_of(r).find("not an AdmissionReview admission.k8s.io/v1"), std::string::npos) << r.out;
  r = post("{\"apiVersion\":");
  EXPECT_EQ(status_of(r), 400);
  r = post(review("", "CREATE", "{}"));
  EXPECT_EQ(status_of(r), 400);
  EXPECT_NE(body_of(r).find("request.uid"), std::string::npos) << r.out;

  // Declared too large: refused from the head (curl sends Expect: 100-continue and gets 413).
  r = post(std::string(4 * 1024 * 1024, ' '));
  EXPECT_EQ(status_of(r), 413) << r.err;
  // Chunked, no declared length: refused once the body passes 3 MiB.
  r = post(std::string(3 * 1024 * 1024 + 10, ' '), {"-H", "Transfer-Encoding: chunked"});
  EXPECT_EQ(status_of(r), 413) << r.err;

  // Still serving after all that.
  r = post(review("u-after", "CREATE", ingress_json("good", "good.example", "")));
  EXPECT_NE(body_of(r).find(R"("allowed":true)"), std::string::npos) << r.out;
}

TEST_F(WebhookTest, TlsVerified_WrongCaRefusedByClient) {
  start();
  // curl verifies the chain and the name (127.0.0.1 in the certificate's SANs).
  auto r = post(review("u", "CREATE", ingress_json("good", "good.example", "")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto other = make_ca(dir_.path(), "another CA");
  r = run({"curl", "-sS", "--cacert", other.cert, "--max-time", "10", "-X", "POST", url()}, {.timeout = 20s});
  EXPECT_EQ(r.exit_code, 60) << r.err;  // peer certificate cannot be authenticated
  // Nothing below TLS 1.2.
  TlsClientOptions old;
  old.ca_file = ca_.cert;
  old.verify_name = "127.0.0.1";
  old.max_version = TLS1_1_VERSION;
  old.cipher_list = "DEFAULT:@SECLEVEL=0";
  EXPECT_FALSE(TlsClient::connect("127.0.0.1", port_, old));
  // Plain HTTP on the TLS port gets nothing useful and does not hurt the listener.
  r = run({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:" + std::to_string(port_) + "/validate"},
          {.timeout = 15s});
  EXPECT_NE(r.exit_code, 0);
  r = post(review("u2", "CREATE", ingress_json("good", "good.example", "")));
  EXPECT_EQ(status_of(r), 200) << r.err;
}

TEST_F(WebhookTest, HostileRequests_RefusedAndTheListenerSurvives) {
  start();
  TlsClientOptions opts;
  opts.ca_file = ca_.cert;
  opts.verify_name = "127.0.0.1";
  const auto status_for = [&](const std::string& raw) {
    auto c = TlsClient::connect("127.0.0.1", port_, opts);
    EXPECT_TRUE(c) << c.error;
    if (!c) return 0;
    c->write(raw);
    const auto resp = c->read_http_response(15s);
    return resp ? resp->status : -1;
  };
  const std::string json = "Content-Type: application/json\r\n";
  // Not HTTP at all.
  EXPECT_EQ(status_for("\x16\x03\x01garbage\r\n\r\n"), 400);
  // Content-Length and Transfer-Encoding together (request smuggling): refused by the strict parser.
  EXPECT_EQ(status_for("POST /validate HTTP/1.1\r\nHost: x\r\n" + json +
                       "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400);
  // A header block beyond the parser's limit.
  EXPECT_EQ(
      status_for("POST /validate HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n"),
      400);
  // No body framing at all.
  EXPECT_EQ(status_for("POST /validate HTTP/1.1\r\nHost: x\r\n" + json + "\r\n"), 411);
  // A review whose strings hold every kind of byte: answered with valid JSON (checked in the unit
  // tests), never a crash.
  const auto r =
      post(review("u\\\"\\u0001\\u00ff", "CREATE", ingress_json("odd", "odd.example", "\\u0000\\n\\u2028")));
  EXPECT_EQ(status_of(r), 200) << r.out;
  EXPECT_NE(body_of(r).find(R"("allowed":false)"), std::string::npos) << r.out;
  ASSERT_TRUE(pg_->running());
  const auto ok = post(review("u-ok", "CREATE", ingress_json("good", "good.example", "")));
  EXPECT_NE(body_of(ok).find(R"("allowed":true)"), std::string::npos) << ok.out;
}

TEST_F(WebhookTest, ConnectionFlood_BoundedAndRecovers) {
  start();
  // 64 connections that never start TLS hold every slot (until their 10 s deadline)...
  std::vector<PlainClient> idle;
  for (int i = 0; i < 64; ++i) {
    auto c = PlainClient::connect("127.0.0.1", port_);
    ASSERT_TRUE(c) << c.error;
    idle.push_back(std::move(*c));
  }
  // ...so one more is closed on accept rather than queued or served.
  auto extra = PlainClient::connect("127.0.0.1", port_);
  ASSERT_TRUE(extra) << extra.error;
  const auto t0 = std::chrono::steady_clock::now();
  extra->read_all(5s);
  EXPECT_TRUE(extra->closed());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  // When they go, reviews are served again (polled with a deadline: the server sees the FINs).
  idle.clear();
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    const auto r = post(review("u-after", "CREATE", ingress_json("good", "good.example", "")));
    served = body_of(r).find(R"("allowed":true)") != std::string::npos;
  }
  EXPECT_TRUE(served);
}

TEST_F(WebhookTest, RenewedCertificate_ServedWithoutRestart) {
  start();
  // cert-manager renews: new files in place (here from a new CA, so the test can tell them apart).
  const auto ca2 = make_ca(dir_.path(), "renewal CA");
  const auto renewed = make_leaf(dir_.path(), ca2, "renewed", {"127.0.0.1"});
  std::filesystem::copy_file(renewed.key, cert_.key, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(renewed.cert, cert_.cert, std::filesystem::copy_options::overwrite_existing);
  const auto file =
      dir_.write("renew.json", review("u-r", "CREATE", ingress_json("good", "good.example", "")));
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {  // the webhook looks at the files at most once a second
    const auto r = run({"curl", "-sS", "--cacert", ca2.cert, "--max-time", "5", "-H",
                        "Content-Type: application/json", "--data-binary", "@" + file, url()},
                       {.timeout = 10s});
    served = r.out.find(R"("allowed":true)") != std::string::npos;
    if (!served) std::this_thread::sleep_for(50ms);  // polling with a deadline (100 tries)
  }
  EXPECT_TRUE(served) << pg_->output();
  EXPECT_TRUE(pg_->wait_for_line("webhook: certificate reloaded", 1s));
}

TEST_F(WebhookTest, SlowClient_DoesNotBlockAnotherReview_AndIsCutOff) {
  start();
  TlsClientOptions opts;
  opts.ca_file = ca_.cert;
  opts.verify_name = "127.0.0.1";
  auto slow = TlsClient::connect("127.0.0.1", port_, opts);
  ASSERT_TRUE(slow) << slow.error;
  ASSERT_TRUE(
      slow->write("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 100\r\n\r\n{\"apiVersion\":"));
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = post(review("u-fast", "CREATE", ingress_json("good", "good.example", "")));
  EXPECT_NE(body_of(r).find(R"("allowed":true)"), std::string::npos) << r.out << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  // The slow one is closed by the exchange deadline (10 s), without an answer.
  const auto rest = slow->read_all(20s);
  EXPECT_TRUE(slow->closed());
  EXPECT_EQ(rest.find("HTTP/1.1 200"), std::string::npos) << rest;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 8s);
}

TEST_F(WebhookTest, UnloadableCertificate_StartupFailsWithExit1) {
  const auto path = dir_.write("phigate.yaml", config("{ listen: \"127.0.0.1:0\", certificate: " + ca_.key +
                                                      ", key: " + cert_.key + " }"));
  auto p = Process::start({bin("phigate"), "run", "--config", path});
  const auto rc = p.wait_exit(20s);
  ASSERT_TRUE(rc) << p.output();
  EXPECT_EQ(*rc, 1) << p.output();
  EXPECT_NE(p.output().find("ingress.webhook.certificate"), std::string::npos) << p.output();
  EXPECT_EQ(p.output().find("phigate ready"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace phigate::test
