// Exercises the harness once against real openssl, curl and nginx on loopback, so that a broken harness
// shows up here rather than as confusing failures in the integration tests.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

#include "support/certs.hpp"
#include "support/hash.hpp"
#include "support/http_response.hpp"
#include "support/net.hpp"
#include "support/nginx.hpp"
#include "support/plain_client.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/tls_client.hpp"

namespace phigate::test {
namespace {

using namespace std::chrono_literals;
using State = HttpParseResult::State;

TEST(TempDir_WriteCreatesParents_RemovedOnDestruction, Works) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    EXPECT_NE(path.find("phigate-test-"), std::string::npos);
    const std::string file = dir.write("a/b/c.txt", "hello");
    EXPECT_EQ(file, dir.path("a/b/c.txt"));
    EXPECT_EQ(dir.read("a/b/c.txt"), "hello");
  }
  if (std::getenv("PHIGATE_KEEP_TMP") == nullptr) {
    EXPECT_FALSE(std::filesystem::exists(path));
  }
}

TEST(Hash, Sha256AndPattern_MatchKnownValues) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(pattern_bytes(38), "abcdefghijklmnopqrstuvwxyz0123456789ab");
  TempDir dir;
  const std::string big = pattern_bytes(300000);
  EXPECT_EQ(sha256_file_hex(dir.write("big", big)), sha256_hex(big));
}

TEST(Net, ParseHostPort_AcceptsIpv4Ipv6Names_RejectsJunk) {
  auto a = parse_host_port("127.0.0.1:1234");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 1234);
  auto b = parse_host_port("[::1]:8443");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 8443);
  EXPECT_FALSE(parse_host_port("127.0.0.1"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:0"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:65536"));
  EXPECT_FALSE(parse_host_port("::1:80"));
  EXPECT_FALSE(parse_host_port(":80"));
  EXPECT_NE(free_port(), 0);
}

TEST(HttpParser, ContentLength_LeavesPipelinedBytes) {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhelloHTTP/1.1 204";
  auto r = parse_http_response(wire);
  ASSERT_EQ(r.state, State::Complete) << r.error;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.reason, "OK");
  EXPECT_EQ(r.response.body, "hello");
  EXPECT_EQ(r.response.header("content-length"), "5");
  EXPECT_EQ(r.response.header_values("X-A"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(wire.substr(r.response.wire_bytes), "HTTP/1.1 204");
  EXPECT_EQ(parse_http_response(wire.substr(0, 40)).state, State::NeedMore);
}

TEST(HttpParser, Chunked_DecodesBodyAndTrailers) {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: "
      "t\r\n\r\nX";
  for (std::size_t cut = 0; cut + 1 < wire.size(); ++cut) {
    EXPECT_EQ(parse_http_response(wire.substr(0, cut)).state, State::NeedMore) << cut;
  }
  auto r = parse_http_response(wire);
  ASSERT_EQ(r.state, State::Complete) << r.error;
  EXPECT_TRUE(r.response.chunked);
  EXPECT_EQ(r.response.body, "hello world");
  ASSERT_EQ(r.response.trailers.size(), 1u);
  EXPECT_EQ(r.response.trailers[0].second, "t");
  EXPECT_EQ(r.response.wire_bytes, wire.size() - 1);
}

TEST(HttpParser, NoBodyCases_And_CloseDelimited_And_Invalid) {
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).state, State::Complete);
  EXPECT_EQ(parse_http_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").state,
            State::Complete);
  EXPECT_EQ(parse_http_response("HTTP/1.1 100 Continue\r\n\r\n").state, State::Complete);
  EXPECT_EQ(parse_http_response("HTTP/1.0 200 ok\r\n\r\nabc").state, State::NeedMore);
  auto eof = parse_http_response("HTTP/1.0 200 ok\r\n\r\nabc", false, true);
  ASSERT_EQ(eof.state, State::Complete);
  EXPECT_EQ(eof.response.body, "abc");
  EXPECT_EQ(parse_http_response("garbage\r\n\r\n").state, State::Invalid);
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").state,
            State::Invalid);
}

TEST(Run, CapturesLargeStdoutStderrAndStdin) {
  const std::string input = pattern_bytes(1 << 20);
  auto r = run({"sh", "-c", "cat; head -c 300000 /dev/zero >&2; exit 7"}, RunOptions{.stdin_data = input});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, input);
  EXPECT_EQ(r.err.size(), 300000u);
  auto env = run({"sh", "-c", "printf %s \"$PHI_X\""}, RunOptions{.env = {{"PHI_X", "yes"}}});
  EXPECT_EQ(env.out, "yes");
}

TEST(Run, Timeout_KillsChild) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run({"sleep", "30"}, RunOptions{.timeout = 200ms});
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_THROW(run({"/nonexistent/binary"}), std::runtime_error);
}

TEST(Process, WaitForLine_Signal_ExitCodes) {
  auto p = Process::start({"sh", "-c", "echo starting; echo \"ready $PHI_Y\" >&2; exec sleep 30"},
                          ProcessOptions{.env = {{"PHI_Y", "now"}}});
  auto line = p.wait_for_line("ready", 5s);
  ASSERT_TRUE(line) << p.output();
  EXPECT_EQ(*line, "ready now");
  EXPECT_TRUE(p.running());
  EXPECT_FALSE(p.wait_exit(20ms));
  ASSERT_TRUE(p.send_signal(SIGTERM));
  EXPECT_EQ(p.wait_exit(5s), 128 + SIGTERM);
  EXPECT_FALSE(p.running());

  auto q = Process::start({"sh", "-c", "echo bye; exit 3"});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.wait_for_line("never printed", 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(q.wait_exit(1s), 3);
  EXPECT_EQ(q.output(), "bye\n");
}

TEST(Process, WaitForLineWaitsForTheWholeLine) {
  // The line arrives in two writes, the second one a while later: the first piece alone is not it.
  auto p = Process::start({"sh", "-c", "printf 'READY '; sleep 0.3; echo 4242; exec sleep 30"});
  auto line = p.wait_for_line("READY ", 5s);
  ASSERT_TRUE(line) << p.output();
  EXPECT_EQ(*line, "READY 4242");
  ASSERT_TRUE(p.send_signal(SIGTERM));
  EXPECT_EQ(p.wait_exit(5s), 128 + SIGTERM);
  // A last line without its newline counts once the child has exited.
  auto q = Process::start({"sh", "-c", "printf 'done 7'"});
  line = q.wait_for_line("done", 5s);
  ASSERT_TRUE(line) << q.output();
  EXPECT_EQ(*line, "done 7");
}

TEST(Nginx, ServesFile_ToCurl_AndToPipelinedPlainClient) {
  TempDir dir;
  const std::string body = pattern_bytes(100000);
  dir.write("www/data.bin", body);
  dir.write("www/small.txt", "small\n");
  auto nginx = Nginx::start(dir, NginxOptions{.root_dir = dir.path("www")});

  auto curl = run({"curl", "-sS", "--max-time", "10", nginx.url("/data.bin")});
  ASSERT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_EQ(sha256_hex(curl.out), sha256_hex(body));

  auto c = PlainClient::connect("127.0.0.1", nginx.port());
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(
      c->write("GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n"
               "HEAD /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto r1 = c->read_http_response(5s);
  ASSERT_TRUE(r1) << c->error();
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body.size(), body.size());
  EXPECT_EQ(r1->body, body);
  auto r2 = c->read_http_response(5s, /*head_request=*/true);
  ASSERT_TRUE(r2) << c->error();
  EXPECT_EQ(r2->header("Content-Length"), "6");
  EXPECT_TRUE(r2->body.empty());
  auto r3 = c->read_http_response(5s);
  ASSERT_TRUE(r3) << c->error();
  EXPECT_EQ(r3->body, "small\n");
  EXPECT_EQ(c->read_all(5s), "");
  EXPECT_TRUE(c->closed());
  EXPECT_FALSE(c->read_http_response(1s));

  c->close();  // an open client would hold up nginx's graceful stop by its lingering_timeout

  EXPECT_TRUE(wait_http_status("127.0.0.1", nginx.port(), "/small.txt", 5s));
  EXPECT_TRUE(wait_http_status("127.0.0.1", nginx.port(), "/missing", 5s, 404));
  EXPECT_EQ(nginx.stop(), 0);
  EXPECT_FALSE(PlainClient::connect("127.0.0.1", nginx.port()));
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = make_ca(dir_.path(), "Test Root");
    leaf_ = make_leaf(dir_.path(), ca_, "a.test", {"a.test", "127.0.0.1"});
  }
  // openssl s_server prints ACCEPT once it listens; -www answers each connection with a status page.
  Process start_server(std::uint16_t port, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                                  "-cert",   leaf_.cert, "-key",    leaf_.key,
                                  "-www",    "-alpn",    "http/1.1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Process::start(argv);
    EXPECT_TRUE(p.wait_for_line("ACCEPT", 10s)) << p.output();
    return p;
  }

  TempDir dir_;
  CertPaths ca_;
  CertPaths leaf_;
};

TEST_F(TlsTest, TlsClient_VerifiesWithSni_ReadsResponse_Resumes) {
  const auto port = free_port();
  auto server = start_server(port);
  TlsClientOptions opts{.sni = "a.test", .ca_file = ca_.cert, .alpn = {"h2", "http/1.1"}};
  auto c = TlsClient::connect("127.0.0.1", port, opts);
  ASSERT_TRUE(c) << c.error << server.output();
  EXPECT_EQ(c->negotiated_version(), "TLSv1.3");
  EXPECT_EQ(c->negotiated_protocol(), "http/1.1");
  EXPECT_EQ(c->peer_certificate_subject(), "CN=a.test");
  EXPECT_FALSE(c->session_reused());
  ASSERT_TRUE(c->write("GET / HTTP/1.0\r\n\r\n"));
  auto resp = c->read_http_response(5s);
  ASSERT_TRUE(resp) << c->error();
  EXPECT_EQ(resp->status, 200);
  EXPECT_NE(resp->body.find("Ciphers supported"), std::string::npos);
  SessionPtr session = c->get_session();
  ASSERT_TRUE(session);
  // s_server serves one connection at a time and waits for our side to close.
  c->close();

  opts.session = session;
  auto again = TlsClient::connect("127.0.0.1", port, opts);
  ASSERT_TRUE(again) << again.error;
  EXPECT_TRUE(again->session_reused());
  again->close();

  // The IP SAN verifies too; TLS 1.2 can be forced.
  auto by_ip = TlsClient::connect(
      "127.0.0.1", port, {.ca_file = ca_.cert, .verify_name = "127.0.0.1", .max_version = TLS1_2_VERSION});
  ASSERT_TRUE(by_ip) << by_ip.error;
  EXPECT_EQ(by_ip->negotiated_version(), "TLSv1.2");
  EXPECT_TRUE(by_ip->send_close_notify());
}

TEST_F(TlsTest, TlsClient_ReportsVerifyAndAlertFailures) {
  const auto port = free_port();
  auto server = start_server(port);
  auto wrong_name = TlsClient::connect("127.0.0.1", port, {.sni = "b.test", .ca_file = ca_.cert});
  ASSERT_FALSE(wrong_name);
  EXPECT_NE(wrong_name.error.find("verify"), std::string::npos) << wrong_name.error;

  TempDir other;
  const auto other_ca = make_ca(other.path(), "Other Root");
  auto wrong_ca = TlsClient::connect("127.0.0.1", port, {.sni = "a.test", .ca_file = other_ca.cert});
  ASSERT_FALSE(wrong_ca);
  EXPECT_NE(wrong_ca.error.find("unable to get local issuer certificate"), std::string::npos)
      << wrong_ca.error;

  auto no_common_version = TlsClient::connect("127.0.0.1", port, {.max_version = TLS1_1_VERSION});
  ASSERT_FALSE(no_common_version);
  EXPECT_FALSE(no_common_version.error.empty());

  auto refused = TlsClient::connect("127.0.0.1", free_port(), {});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error.find("refused"), std::string::npos) << refused.error;
}

TEST_F(TlsTest, TlsClient_MutualTls_RsaLeaf) {
  const auto port = free_port();
  const auto rsa_leaf = make_leaf(dir_.path(), ca_, "a.test", {"a.test"}, KeyType::Rsa2048);
  const auto client_cert = make_leaf(dir_.path(), ca_, "client-1", {}, KeyType::EcdsaP256, /*client=*/true);
  leaf_ = rsa_leaf;
  auto server = start_server(port, {"-Verify", "1", "-CAfile", ca_.cert});

  auto anonymous = TlsClient::connect("127.0.0.1", port, {.sni = "a.test", .ca_file = ca_.cert});
  // TLS 1.3: the server's rejection arrives after our Finished, i.e. on the first read.
  if (anonymous) {
    anonymous->write("GET / HTTP/1.0\r\n\r\n");
    EXPECT_FALSE(anonymous->read_http_response(5s));
    EXPECT_NE(anonymous->error().find("certificate required"), std::string::npos) << anonymous->error();
    EXPECT_EQ(anonymous->received_alert(), "certificate required");
    anonymous->close();
  }

  auto mtls = TlsClient::connect(
      "127.0.0.1", port,
      {.sni = "a.test", .ca_file = ca_.cert, .cert_file = client_cert.cert, .key_file = client_cert.key});
  ASSERT_TRUE(mtls) << mtls.error;
  ASSERT_TRUE(mtls->write("GET / HTTP/1.0\r\n\r\n"));
  auto resp = mtls->read_http_response(5s);
  ASSERT_TRUE(resp) << mtls->error();
  EXPECT_EQ(resp->status, 200);
  EXPECT_NE(resp->body.find("CN=client-1"), std::string::npos);
  mtls->close();

  // curl against the same server, for the run() + certs combination the integration tests use.
  auto curl = run({"curl", "-sS", "--max-time", "10", "--cacert", ca_.cert, "--cert", client_cert.cert,
                   "--key", client_cert.key, "--resolve", "a.test:" + std::to_string(port) + ":127.0.0.1",
                   "https://a.test:" + std::to_string(port) + "/"});
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_NE(curl.out.find("Ciphers supported"), std::string::npos);
}

}  // namespace
}  // namespace phigate::test
