// The Kubernetes API client against real servers on loopback: the test API server
// (tests/kube/fake_apiserver.py via kube_fixture.hpp) for requests, tokens, client certificates
// and watches, and a small hostile HTTPS server (Python, written here) for what a broken or
// malicious API server sends: huge bodies, endless lines and headers, garbage, cut streams.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kube_fixture.hpp"
#include "phigate/kube/client.hpp"
#include "phigate/kube/credentials.hpp"
#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace phigate::kube {
namespace {

using namespace std::chrono_literals;
using test::CertPaths;
using test::Process;
using test::TempDir;

/// One HTTPS server, one behaviour per path. Prints "READY <port>" once listening.
constexpr const char* kHostileServer = R"PY(
import json, socket, ssl, sys, threading, time
cert, key, client_ca = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(client_ca)
ctx.verify_mode = ssl.CERT_OPTIONAL
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("READY", srv.getsockname()[1], flush=True)

def chunk(b):
    return b"%x\r\n" % len(b) + b + b"\r\n"

def handle(raw):
    try:
        c = ctx.wrap_socket(raw, server_side=True)
    except Exception as e:
        print("handshake failed:", e, flush=True)
        return
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                return
            data += d
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            rest += c.recv(65536)
        peer = c.getpeercert()
        cn = ""
        if peer:
            for rdn in peer.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
        if path == "/echo":
            body = json.dumps({"method": method, "path": path, "headers": headers,
                               "body": rest.decode(), "client_cn": cn}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif path == "/chunked":
            c.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + chunk(b'{"kind":') + chunk(b'"Status"}') + b"0\r\n\r\n")
        elif path == "/close-delimited":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        elif path == "/watch":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            # Lines split across chunk boundaries, an empty line, CR LF endings, two in one chunk.
            for piece in [b'{"type":"ADD', b'ED","n":1}\n', b'\n{"type":"MODIFIED","n":2}\r\n{"type":"DEL',
                          b'ETED","n":3}\n']:
                c.sendall(chunk(piece))
                time.sleep(0.01)
            c.sendall(b"0\r\n\r\n")
        elif path == "/watch-cut":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + chunk(b'{"type":"ADDED","n":1}\n') + b"40\r\n{\"type\":")
        elif path == "/forbidden":
            body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}'
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif path == "/huge-declared":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n" + b"x" * 1000)
            time.sleep(5)
        elif path == "/huge-chunked":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            block = chunk(b"x" * (1 << 20))
            for _ in range(300):
                c.sendall(block)
        elif path == "/endless-line":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b'{"type":"ADDED"}\n'))
            block = chunk(b"y" * (1 << 20))
            for _ in range(100):
                c.sendall(block)
        elif path == "/endless-headers":
            c.sendall(b"HTTP/1.1 200 OK\r\n")
            for i in range(100000):
                c.sendall(b"X-Filler-%d: %s\r\n" % (i, b"z" * 100))
        elif path == "/garbage":
            c.sendall(b"HELLO THERE\r\n\r\n")
        elif path == "/silent":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            time.sleep(10)
        elif path == "/keep-alive-then-close":
            # Keeps the connection, then drops the next request unanswered (an idle timeout racing it).
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            c.recv(65536)
        elif path == "/head" and method == "HEAD":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n\r\n")
            c.recv(65536)
        elif path == "/truncated":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        else:
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            c.close()
        except Exception:
            pass

while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
)PY";

/// What a request or a stream came to.
struct Outcome {
  bool done = false;
  std::optional<Response> response;
  std::optional<TransportError> error;
  std::vector<std::string> lines;
};

/// Runs `io` until `pred` holds or `timeout` passes; true when it held.
template <class Pred>
bool run_until(net::asio::io_context& io, Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_for(20ms);
  }
  return true;
}

Client::ResponseHandler record(Outcome& o) {
  return [&o](std::optional<Response> r, std::optional<TransportError> e) {
    EXPECT_FALSE(o.done) << "handler called twice";
    EXPECT_NE(r.has_value(), e.has_value()) << "exactly one of response and error";
    o.done = true;
    o.response = std::move(r);
    o.error = std::move(e);
  };
}

/// The hostile server is stateless: one per suite (certificates and a Python start cost seconds).
class KubeClientTest : public ::testing::Test {
 protected:
  struct Shared {
    TempDir dir;
    CertPaths ca, other_ca, client_ca, client_cert;
    std::optional<Process> server;
    int port = 0;
  };
  static void SetUpTestSuite() {
    shared_ = new Shared();
    Shared& s = *shared_;
    s.ca = test::make_ca(s.dir.path(), "hostile-ca");
    s.other_ca = test::make_ca(s.dir.path(), "other-ca");
    s.client_ca = test::make_ca(s.dir.path(), "client-ca");
    const auto leaf = test::make_leaf(s.dir.path(), s.ca, "apiserver", {"127.0.0.1", "localhost"});
    s.client_cert =
        test::make_leaf(s.dir.path(), s.client_ca, "phigate-ingress", {}, test::KeyType::EcdsaP256, true);
    const auto script = s.dir.write("hostile.py", kHostileServer);
    s.server.emplace(Process::start({"python3", "-u", script, leaf.cert, leaf.key, s.client_ca.cert}));
    const auto ready = s.server->wait_for_line("READY ", 15s);
    if (ready) s.port = std::stoi(ready->substr(ready->find(' ') + 1));
  }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(shared_->port, 0) << shared_->server->output();
    port_ = shared_->port;
    ca_ = shared_->ca;
    other_ca_ = shared_->other_ca;
    client_cert_ = shared_->client_cert;
  }

  Credentials creds(const std::string& host = "127.0.0.1") const {
    Credentials c;
    c.server = "https://" + host + ":" + std::to_string(port_);
    c.server_name = host;
    c.ca_pem = test::read_file(ca_.cert);
    c.token = "secret-token-123";
    return c;
  }

  Outcome get(Client& client, const std::string& path, std::chrono::milliseconds timeout = 10s) {
    Outcome o;
    RequestOptions opt;
    opt.path = path;
    opt.timeout = timeout;
    client.request(opt, record(o));
    EXPECT_TRUE(run_until(
        io_, [&] { return o.done; }, 30s))
        << path;
    return o;
  }

  Outcome watch(Client& client, const std::string& path, std::chrono::milliseconds idle = 10s) {
    Outcome o;
    auto s = client.stream(
        path, idle, [&o](std::string_view l) { o.lines.emplace_back(l); }, record(o));
    EXPECT_TRUE(run_until(
        io_, [&] { return o.done; }, 30s))
        << path;
    return o;
  }

  static inline Shared* shared_ = nullptr;
  CertPaths ca_, other_ca_, client_cert_;
  int port_ = 0;
  net::asio::io_context io_;
};

TEST_F(KubeClientTest, SendsHeadersTokenAndBody) {
  Client client(io_, creds());
  Outcome o;
  RequestOptions opt;
  opt.method = "PATCH";
  opt.path = "/echo";
  opt.body = R"({"status":{}})";
  opt.content_type = "application/merge-patch+json";
  client.request(opt, record(o));
  ASSERT_TRUE(run_until(
      io_, [&] { return o.done; }, 30s));
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200);
  EXPECT_EQ(o.response->content_type, "application/json");
  const auto& b = o.response->body;
  EXPECT_NE(b.find(R"("method": "PATCH")"), std::string::npos) << b;
  EXPECT_NE(b.find(R"("authorization": "Bearer secret-token-123")"), std::string::npos) << b;
  EXPECT_NE(b.find(R"("accept": "application/json")"), std::string::npos) << b;
  EXPECT_NE(b.find(R"("user-agent": "phigate/)"), std::string::npos) << b;
  EXPECT_NE(b.find(R"("host": "127.0.0.1:)" + std::to_string(port_)), std::string::npos) << b;
  EXPECT_NE(b.find(R"("content-type": "application/merge-patch+json")"), std::string::npos) << b;
  EXPECT_NE(b.find(R"("body": "{\"status\":{}}")"), std::string::npos) << b;
  EXPECT_NE(b.find(R"("client_cn": "")"), std::string::npos) << b;
  EXPECT_EQ(client.requests(), 1u);
}

TEST_F(KubeClientTest, ChunkedAndCloseDelimitedBodies) {
  Client client(io_, creds());
  auto o = get(client, "/chunked");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 201);
  EXPECT_EQ(o.response->body, R"({"kind":"Status"})");
  o = get(client, "/close-delimited");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->body, "until the end");
  o = get(client, "/missing");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 404);
}

TEST_F(KubeClientTest, ClientCertificateAndNameCheck) {
  auto c = creds("localhost");  // a DNS name: SNI sent, the name checked against DNS SANs
  c.client_cert_pem = test::read_file(client_cert_.cert);
  c.client_key_pem = test::read_file(client_cert_.key);
  c.token.clear();
  Client client(io_, c);
  const auto o = get(client, "/echo");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_NE(o.response->body.find(R"("client_cn": "phigate-ingress")"), std::string::npos)
      << o.response->body;
  EXPECT_EQ(o.response->body.find("authorization"), std::string::npos) << "no token, no header";
}

TEST_F(KubeClientTest, WrongCaIsAVerificationErrorNamingTheServer) {
  auto c = creds();
  c.ca_pem = test::read_file(other_ca_.cert);
  Client client(io_, c);
  const auto o = get(client, "/echo");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("kube API https://127.0.0.1:" + std::to_string(port_)), std::string::npos)
      << o.error->message;
  EXPECT_NE(o.error->message.find("certificate verify failed: unable to get local issuer certificate"),
            std::string::npos)
      << o.error->message;
  EXPECT_EQ(o.error->message.find("secret-token-123"), std::string::npos);
  EXPECT_EQ(client.requests(), 0u) << "nothing sent to an unverified server";
}

TEST_F(KubeClientTest, WrongHostNameIsRefused) {
  auto c = creds();
  c.server_name = "kubernetes.default.svc";  // the certificate carries 127.0.0.1 and localhost only
  Client client(io_, c);
  const auto o = get(client, "/echo");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("certificate verify failed: hostname mismatch"), std::string::npos)
      << o.error->message;
  EXPECT_EQ(client.requests(), 0u);
}

TEST_F(KubeClientTest, EmptyCaIsRefusedWithoutConnecting) {
  auto c = creds();
  c.ca_pem.clear();
  Client client(io_, c);
  const auto o = get(client, "/echo");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("no cluster CA"), std::string::npos) << o.error->message;
}

TEST_F(KubeClientTest, StreamSplitsLinesAcrossChunks) {
  Client client(io_, creds());
  const auto o = watch(client, "/watch");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200);
  ASSERT_EQ(o.lines.size(), 3u);
  EXPECT_EQ(o.lines[0], R"({"type":"ADDED","n":1})");
  EXPECT_EQ(o.lines[1], R"({"type":"MODIFIED","n":2})");
  EXPECT_EQ(o.lines[2], R"({"type":"DELETED","n":3})");
}

TEST_F(KubeClientTest, StreamCutMidChunkIsAnError) {
  Client client(io_, creds());
  const auto o = watch(client, "/watch-cut");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_EQ(o.lines.size(), 1u);
  EXPECT_NE(o.error->message.find("connection closed before the response ended"), std::string::npos)
      << o.error->message;
}

TEST_F(KubeClientTest, NonOkStreamPassesTheStatusBody) {
  Client client(io_, creds());
  const auto o = watch(client, "/forbidden");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 403);
  EXPECT_NE(o.response->body.find(R"("reason":"Forbidden")"), std::string::npos);
  EXPECT_TRUE(o.lines.empty());
}

TEST_F(KubeClientTest, StreamIdleTimeoutAndCancel) {
  Client client(io_, creds());
  const auto o = watch(client, "/silent", 300ms);
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("no byte for 300 ms"), std::string::npos) << o.error->message;

  Outcome c;
  auto s = client.stream(
      "/silent", 10s, [](std::string_view) {}, record(c));
  run_until(
      io_, [&] { return client.requests() == 2; }, 10s);
  s->cancel();
  EXPECT_FALSE(run_until(
      io_, [&] { return c.done; }, 300ms))
      << "cancel() calls no handler";
}

TEST_F(KubeClientTest, HostileDeclaredHugeBodyFailsBeforeReadingIt) {
  Client client(io_, creds());
  const auto o = get(client, "/huge-declared");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("response body larger than"), std::string::npos) << o.error->message;
}

TEST_F(KubeClientTest, HostileChunkedBodyOverTheCapIsAnError) {
  Client client(io_, creds());
  const auto o = get(client, "/huge-chunked", 50s);
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("response body larger than"), std::string::npos) << o.error->message;
}

TEST_F(KubeClientTest, HostileEndlessLineIsAnError) {
  Client client(io_, creds());
  const auto o = watch(client, "/endless-line");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_EQ(o.lines.size(), 1u);
  EXPECT_NE(o.error->message.find("watch event line longer than"), std::string::npos) << o.error->message;
}

TEST_F(KubeClientTest, HostileHeadersGarbageAndTruncationAreErrors) {
  Client client(io_, creds());
  auto o = get(client, "/endless-headers");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("response headers larger than"), std::string::npos) << o.error->message;
  o = get(client, "/garbage");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("malformed HTTP response"), std::string::npos) << o.error->message;
  o = get(client, "/truncated");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("closed before the response ended"), std::string::npos) << o.error->message;
}

TEST_F(KubeClientTest, ClosedIdleConnectionsAreNotReused) {
  Client client(io_, creds());
  // The server closes after each answer (without saying so): the idle connection is readable
  // (FIN) when the next request wants it, so a fresh one is made.
  for (int i = 0; i < 2; ++i) {
    const auto o = get(client, "/echo");
    ASSERT_TRUE(o.response.has_value()) << o.error->message;
  }
  EXPECT_EQ(client.connections(), 2u);
}

TEST_F(KubeClientTest, AnIdempotentRequestLostOnAReusedConnectionIsSentAgain) {
  Client client(io_, creds());
  auto o = get(client, "/keep-alive-then-close");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  o = get(client, "/echo");  // sent on the kept connection, dropped unanswered, sent again
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200);
  EXPECT_EQ(client.requests(), 3u);
  EXPECT_EQ(client.connections(), 2u);

  // A POST is not sent twice: the loss is the caller's error to handle.
  o = get(client, "/keep-alive-then-close");
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  Outcome post;
  RequestOptions opt;
  opt.method = "POST";
  opt.path = "/echo";
  opt.body = "{}";
  client.request(opt, record(post));
  ASSERT_TRUE(run_until(
      io_, [&] { return post.done; }, 20s));
  ASSERT_TRUE(post.error.has_value());
  EXPECT_NE(post.error->message.find("connection closed before the response ended"), std::string::npos)
      << post.error->message;
  EXPECT_EQ(client.connections(), 3u);
}

TEST_F(KubeClientTest, HeadResponseHasNoBody) {
  Client client(io_, creds());
  Outcome o;
  RequestOptions opt;
  opt.method = "HEAD";
  opt.path = "/head";
  opt.timeout = 5s;
  client.request(opt, record(o));
  ASSERT_TRUE(run_until(
      io_, [&] { return o.done; }, 20s));
  ASSERT_TRUE(o.response.has_value()) << o.error->message;  // not a timeout waiting for 1234 bytes
  EXPECT_EQ(o.response->status, 200);
  EXPECT_TRUE(o.response->body.empty());
}

TEST_F(KubeClientTest, RequestTimeoutAndUnsafePaths) {
  Client client(io_, creds());
  auto o = get(client, "/silent", 300ms);
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("no complete response within 300 ms"), std::string::npos)
      << o.error->message;
  o = get(client, "/echo\r\nX-Injected: 1");
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find("invalid request path"), std::string::npos) << o.error->message;
}

// --- against the test API server ---------------------------------------------------------------

class KubeClientApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::FakeApiOptions o;
    o.identities = {{"admin", "admin-token", {}},
                    {"reader", "reader-token", {"get,list,watch /services,configmaps"}},
                    {"cert-user", "", {}}};
    api_ = test::FakeApiServer::start(dir_, o);
  }

  Credentials kubeconfig(const std::string& identity) {
    CredentialsError err;
    auto c = from_kubeconfig(api_->kubeconfig(identity), "", err);
    EXPECT_TRUE(c.has_value()) << err.message;
    return c.value_or(Credentials{});
  }

  Outcome get(Client& client, const std::string& path) {
    Outcome o;
    RequestOptions opt;
    opt.path = path;
    opt.timeout = 10s;
    client.request(opt, record(o));
    EXPECT_TRUE(run_until(
        io_, [&] { return o.done; }, 20s))
        << path;
    return o;
  }

  /// The identity the server saw for the last request to `path`.
  std::string user_of_last(const std::string& path) {
    std::string user = "<none>";
    for (const auto& r : api_->requests()) {
      if (r.path == path) user = r.user;
    }
    return user;
  }

  TempDir dir_;
  std::unique_ptr<test::FakeApiServer> api_;
  net::asio::io_context io_;
};

constexpr const char* kServicesPath = "/api/v1/namespaces/default/services";

TEST_F(KubeClientApiTest, ListsServicesWithTheKubeconfigToken) {
  api_->apply(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},
                  "spec":{"ports":[{"port":80}]}})");
  Client client(io_, kubeconfig("admin"));
  const auto o = get(client, kServicesPath);
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200) << o.response->body;
  EXPECT_EQ(o.response->content_type, "application/json");
  EXPECT_NE(o.response->body.find(R"("kind": "ServiceList")"), std::string::npos) << o.response->body;
  EXPECT_NE(o.response->body.find(R"("web")"), std::string::npos) << o.response->body;
  EXPECT_EQ(user_of_last(kServicesPath), "admin");
}

TEST_F(KubeClientApiTest, KeepAliveReusesOneConnectionButNotForWatches) {
  Client client(io_, kubeconfig("admin"));
  for (int i = 0; i < 3; ++i) {
    const auto o = get(client, kServicesPath);
    ASSERT_TRUE(o.response.has_value()) << o.error->message;
    EXPECT_EQ(o.response->status, 200);
  }
  Outcome created;
  RequestOptions opt;
  opt.method = "POST";
  opt.path = "/api/v1/namespaces/default/configmaps";
  opt.body = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"made"}})";
  client.request(opt, record(created));
  ASSERT_TRUE(run_until(
      io_, [&] { return created.done; }, 20s));
  ASSERT_TRUE(created.response.has_value()) << created.error->message;
  EXPECT_EQ(created.response->status, 201) << created.response->body;
  EXPECT_EQ(client.requests(), 4u);
  EXPECT_EQ(client.connections(), 1u);

  Outcome w;
  auto s = client.stream(
      "/api/v1/namespaces/default/configmaps?watch=1", 10s,
      [&w](std::string_view l) { w.lines.emplace_back(l); }, record(w));
  ASSERT_TRUE(run_until(
      io_, [&] { return !w.lines.empty(); }, 10s));  // the synthetic ADDED of "made"
  EXPECT_EQ(client.connections(), 2u) << "a watch has its own connection";
  const auto o = get(client, kServicesPath);
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(client.connections(), 2u) << "the idle connection is still the one for requests";
  s->cancel();
}

TEST_F(KubeClientApiTest, ClientCertificateIdentity) {
  Client client(io_, kubeconfig("cert-user"));
  EXPECT_TRUE(client.credentials().token.empty());
  const auto o = get(client, kServicesPath);
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200) << o.response->body;
  EXPECT_EQ(user_of_last(kServicesPath), "cert-user");
}

TEST_F(KubeClientApiTest, WrongCaAgainstTheApiServer) {
  auto c = kubeconfig("admin");
  c.ca_pem = test::read_file(test::make_ca(dir_.path(), "not-the-cluster-ca").cert);
  Client client(io_, c);
  const auto o = get(client, kServicesPath);
  ASSERT_TRUE(o.error.has_value());
  EXPECT_NE(o.error->message.find(api_->url() + ": certificate verify failed"), std::string::npos)
      << o.error->message;
  EXPECT_EQ(user_of_last(kServicesPath), "<none>") << "nothing reached the server";
}

TEST_F(KubeClientApiTest, InClusterTokenRotation) {
  const auto sa = api_->service_account_dir("reader");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "127.0.0.1"},
                                            {"KUBERNETES_SERVICE_PORT", std::to_string(api_->port())}};
  CredentialsError err;
  auto creds = in_cluster(
      [&env](const std::string& k) -> std::optional<std::string> {
        const auto it = env.find(k);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      },
      err, sa);
  ASSERT_TRUE(creds.has_value()) << err.message;
  Client client(io_, *creds);
  auto o = get(client, kServicesPath);
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200) << o.response->body;

  // The server rotates the token: the old one is refused until the file is rewritten.
  api_->set_token("reader", "reader-token-rotated");
  o = get(client, kServicesPath);
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 401);
  EXPECT_NE(o.response->body.find("Unauthorized"), std::string::npos) << o.response->body;

  std::ofstream(sa + "/token", std::ios::trunc) << "reader-token-rotated\n";
  o = get(client, kServicesPath);
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 200) << o.response->body;
  EXPECT_EQ(user_of_last(kServicesPath), "reader");
}

TEST_F(KubeClientApiTest, WatchReceivesAppliedObjectsAndACutEndsIt) {
  Client client(io_, kubeconfig("admin"));
  Outcome o;
  auto s = client.stream(
      "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=false", 10s,
      [&o](std::string_view l) { o.lines.emplace_back(l); }, record(o));
  ASSERT_TRUE(run_until(
      io_, [&] { return api_->open_watches() == 1; }, 10s));
  api_->apply(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"one","namespace":"default"}})");
  api_->apply(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"two","namespace":"default"}})");
  ASSERT_TRUE(run_until(
      io_, [&] { return o.lines.size() >= 2; }, 10s));
  EXPECT_NE(o.lines[0].find(R"("type": "ADDED")"), std::string::npos) << o.lines[0];
  EXPECT_NE(o.lines[0].find(R"("name": "one")"), std::string::npos) << o.lines[0];
  EXPECT_NE(o.lines[1].find(R"("name": "two")"), std::string::npos) << o.lines[1];
  EXPECT_FALSE(o.done);

  api_->cut_watches();
  ASSERT_TRUE(run_until(
      io_, [&] { return o.done; }, 10s));
  ASSERT_TRUE(o.error.has_value()) << "a cut mid-stream is an error, not a clean end";
  EXPECT_NE(o.error->message.find(api_->url()), std::string::npos) << o.error->message;
}

TEST_F(KubeClientApiTest, WatchCancelClosesTheConnection) {
  Client client(io_, kubeconfig("admin"));
  Outcome o;
  auto s = client.stream(
      "/api/v1/namespaces/default/configmaps?watch=1", 10s, [](std::string_view) {}, record(o));
  ASSERT_TRUE(run_until(
      io_, [&] { return api_->open_watches() == 1; }, 10s));
  s->cancel();
  // The server notices the closed connection at its next write (a bookmark or an event).
  api_->apply(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"poke","namespace":"default"}})");
  EXPECT_TRUE(run_until(
      io_, [&] { return api_->open_watches() == 0; }, 10s));
  EXPECT_FALSE(o.done) << "cancel() calls no handler";
}

TEST_F(KubeClientApiTest, ForbiddenWatchPassesTheStatusBody) {
  Client client(io_, kubeconfig("reader"));
  Outcome o;
  auto s = client.stream(
      "/apis/networking.k8s.io/v1/ingresses?watch=1", 10s,
      [&o](std::string_view l) { o.lines.emplace_back(l); }, record(o));
  ASSERT_TRUE(run_until(
      io_, [&] { return o.done; }, 10s));
  ASSERT_TRUE(o.response.has_value()) << o.error->message;
  EXPECT_EQ(o.response->status, 403);
  EXPECT_NE(o.response->body.find(R"("reason": "Forbidden")"), std::string::npos) << o.response->body;
  EXPECT_TRUE(o.lines.empty());
}

TEST(KubeClientEscape, UrlEscape) {
  EXPECT_EQ(url_escape("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(url_escape("app=web,tier in (a,b)"), "app%3Dweb%2Ctier%20in%20%28a%2Cb%29");
  EXPECT_EQ(url_escape("Az09-._~"), "Az09-._~");
}

}  // namespace
}  // namespace phigate::kube
