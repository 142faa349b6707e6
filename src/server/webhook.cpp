#include "webhook.hpp"

#include <openssl/ssl.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <list>
#include <optional>
#include <string_view>
#include <tuple>

#include "phigate/core/log.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/serializer.hpp"
#include "phigate/kube/admission.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/tls/server_contexts.hpp"
#include "phigate/tls/stream.hpp"

namespace phigate::server::detail {

namespace {

using namespace std::chrono_literals;

// The API server sends at most 3 MiB (its own request limit) plus the review's envelope; more is
// not an AdmissionReview and is refused before it is buffered.
constexpr std::size_t kMaxBody = 3 * 1024 * 1024;
// One exchange (handshake, request, review, answer) must finish within this: a client that
// trickles bytes cannot hold a connection slot. The API server's own timeout is at most 30 s
// (timeoutSeconds, default 10 s).
constexpr auto kConnectionDeadline = 10s;
// Connections served at once; more are closed on accept. The API server opens few (it keeps
// them alive in its pool); a flood of idle ones cannot exhaust descriptors or memory.
constexpr std::size_t kMaxConnections = 64;
constexpr std::size_t kReadChunk = 16 * 1024;

struct SslCtxFree {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

/// State shared by the listener and its connections: a connection's coroutine may outlive stop()
/// (and the Webhook object, until the io_context drops it), so it holds this, never the Webhook.
struct Shared {
  SslCtxPtr ctx;
  Webhook::Hooks hooks;
  WebhookStats stats;
  std::size_t active = 0;
  bool stopped = false;
  // Certificate renewal (cert-manager rewrites the mounted Secret): the files' times when `ctx`
  // was made, and when they were last looked at.
  config::WebhookSpec spec;
  std::filesystem::file_time_type cert_time{}, key_time{};
  std::chrono::steady_clock::time_point checked{};
};

SslCtxPtr make_context(const config::WebhookSpec& spec, std::string& error);

std::pair<std::filesystem::file_time_type, std::filesystem::file_time_type> file_times(
    const config::WebhookSpec& spec) {
  std::error_code ec;
  const auto c = std::filesystem::last_write_time(spec.cert, ec);
  const auto k = std::filesystem::last_write_time(spec.key, ec);
  return {c, k};
}

/// Loads the certificate again when its files changed (looked at most once a second, on accept):
/// a renewed certificate is served without a restart, so the API server never meets an expired
/// one (with failurePolicy Fail that would block every Ingress change). A pair that does not load
/// (half written, key and certificate from different renewals) keeps the current one and is
/// tried again on the next change. Connections already open keep their context (SSL_new holds a
/// reference to it).
void maybe_reload(Shared& sh) {
  const auto now = std::chrono::steady_clock::now();
  if (now - sh.checked < 1s) return;
  sh.checked = now;
  const auto [c, k] = file_times(sh.spec);
  if (c == sh.cert_time && k == sh.key_time) return;
  std::string error;
  auto ctx = make_context(sh.spec, error);
  if (!ctx) {
    PHI_LOG_WARN("webhook: the certificate changed but does not load, keeping the current one: {}", error);
    return;
  }
  sh.ctx = std::move(ctx);
  sh.cert_time = c;
  sh.key_time = k;
  PHI_LOG_INFO("webhook: certificate reloaded");
}

/// One connection; the deadline's handler holds a weak_ptr and a generation (ARCHITECTURE.md,
/// Rules), so a deadline firing after the coroutine finished finds nothing to close.
struct Conn {
  Conn(net::tcp::socket s, SSL_CTX* ctx)
      : stream(std::move(s), ctx), deadline(stream.socket().get_executor()) {}
  tls::Stream stream;
  net::asio::steady_timer deadline;
  std::uint64_t gen = 0;

  void close() {
    ++gen;
    deadline.cancel();
    net::error_code ec;
    stream.socket().close(ec);
  }
};

struct Reply {
  int status = 200;
  std::string body;
  bool json = false;
};

Reply text(int status, std::string body) {
  return {status, std::move(body) + "\n", false};
}

std::string render(const Reply& r, int minor) {
  std::string out;
  if (r.json) {
    http::append_response_head(out, r.status, "OK", minor, {},
                               {http::Framing::Kind::ContentLength, r.body.size()}, true,
                               "Content-Type: application/json\r\n");
    out += r.body;
  } else {
    http::append_local_reply(out, r.status, minor, true, r.body, {}, false,
                             r.status == 405 ? "Allow: POST\r\n" : "");
  }
  return out;
}

bool is_json(const http::HeaderList& headers) {
  const auto* ct = headers.find("content-type");
  if (ct == nullptr) return false;
  std::string_view v = *ct;
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  if (v.size() != kJson.size()) return false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kJson[i]) return false;
  }
  return true;
}

/// The head decides everything but the review itself; nullopt: read the body.
std::optional<Reply> check_head(const http::MessageHead& head) {
  const std::string_view target = head.target;
  if (target.substr(0, target.find('?')) != "/validate") return text(404, "not found");
  if (head.method != "POST") return text(405, "method not allowed");
  if (head.content_length && *head.content_length > kMaxBody) return text(413, "body too large");
  if (!head.content_length && !head.chunked) return text(411, "length required");
  if (!is_json(head.headers)) return text(415, "Content-Type must be application/json");
  return std::nullopt;
}

/// The review proper (control thread: the hooks read the store and the running configuration).
Reply review(Shared& sh, std::string_view body) {
  std::string error;
  const auto req = kube::parse_admission_review(body, error);
  if (!req) {
    ++sh.stats.bad_requests;
    return text(400, "bad AdmissionReview: " + error);
  }
  ++sh.stats.reviews;
  std::vector<std::string> errors, warnings;
  bool allowed = true;
  // Only Ingresses are judged: the ValidatingWebhookConfiguration should send nothing else, and
  // refusing another kind here would block the cluster over a configuration slip. DELETE of an
  // Ingress is always allowed: taking routes away cannot open anything.
  const bool is_ingress = req->kind == "Ingress" && req->group == "networking.k8s.io";
  if (is_ingress && (req->operation == "CREATE" || req->operation == "UPDATE")) {
    const auto config = sh.hooks.config ? sh.hooks.config() : nullptr;
    if (!config) {
      allowed = false;
      errors.push_back("phigate has no configuration loaded yet");
    } else {
      const auto resources = sh.hooks.resources ? sh.hooks.resources() : ingress::LoadResult{};
      auto r = compile::review_ingress(*config, resources, req->object);
      allowed = r.allowed;
      errors = std::move(r.errors);
      warnings = std::move(r.warnings);
    }
  }
  if (allowed) {
    ++sh.stats.allowed;
  } else {
    ++sh.stats.denied;
    // Counts only: the messages carry annotation values an author wrote.
    PHI_LOG_INFO("webhook: review denied ({} errors)", errors.size());
  }
  Reply r{200, kube::admission_response(req->uid, allowed, errors, warnings), true};
  return r;
}

net::awaitable<void> serve(std::shared_ptr<Shared> sh, std::shared_ptr<Conn> conn) {
  struct Slot {
    Shared& sh;
    ~Slot() { --sh.active; }
  } slot{*sh};
  conn->deadline.expires_after(kConnectionDeadline);
  conn->deadline.async_wait([w = std::weak_ptr<Conn>(conn), gen = conn->gen](net::error_code ec) {
    const auto c = w.lock();
    if (ec || !c || c->gen != gen) return;
    net::error_code ignored;
    c->stream.socket().close(ignored);
  });
  if (auto ec = co_await conn->stream.handshake(); ec) {
    PHI_LOG_DEBUG("webhook: TLS handshake failed: {}", conn->stream.last_error());
    conn->close();
    co_return;
  }
  // One request per connection (Connection: close): the exchange's deadline covers it whole, and
  // a kept-alive connection would need an idle deadline and a second state for nothing (the API
  // server reconnects; reviews are rare compared to requests).
  http::Parser parser(http::Parser::Kind::Request, {});
  std::optional<Reply> reply;
  std::string body;
  std::vector<char> buf(kReadChunk);
  bool head_checked = false;
  while (!reply) {
    auto [ec, n] = co_await conn->stream.read_some(buf.data(), buf.size());
    if (ec) {
      // The peer left or the deadline closed the socket: nobody to answer.
      conn->close();
      co_return;
    }
    std::size_t off = 0;
    // Bounded: each pass consumes bytes or moves past one of the two pauses (head, message end).
    for (int pass = 0; pass < 4 && !reply && off <= n; ++pass) {
      std::size_t used = 0;
      const auto st = parser.feed(buf.data() + off, n - off, used);
      off += used;
      for (const auto part : parser.body()) {
        if (body.size() + part.size() > kMaxBody) {
          reply = text(413, "body too large");
          break;
        }
        body.append(part);
      }
      parser.clear_body();
      if (reply) break;
      if (st == http::ParseStatus::Error) {
        ++sh->stats.bad_requests;
        reply = text(400, "bad request");
        break;
      }
      if (parser.head_complete() && !head_checked) {
        head_checked = true;
        if (auto early = check_head(parser.head())) {
          reply = std::move(early);
          break;
        }
        if (parser.head().expect_continue) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          if (auto wec = co_await conn->stream.write_all(kContinue.data(), kContinue.size()); wec) {
            conn->close();
            co_return;
          }
        }
      }
      if (parser.message_complete()) {
        try {
          reply = review(*sh, body);
        } catch (const std::exception&) {
          // Out of memory in a parse or compile: this review fails, the process does not (an
          // exception leaving a detached coroutine would end io_context::run()).
          reply = text(500, "internal error");
        }
        break;
      }
      if (st == http::ParseStatus::NeedMore || off == n) break;
    }
  }
  if (reply->status >= 400 && reply->status != 400) ++sh->stats.bad_requests;
  const auto out = render(*reply, parser.head_complete() ? parser.head().version_minor : 1);
  const auto wec = co_await conn->stream.write_all(out.data(), out.size());
  conn->stream.shutdown_nowait();
  if (!wec && !parser.message_complete()) {
    // Answered before the request ended (413, 404, ...): read what the client is still sending
    // for a while before closing, or the kernel answers those bytes with a reset that can destroy
    // the answer before the client read it (RFC 9112 §9.6). Bounded by bytes and the deadline.
    net::error_code ignored;
    conn->stream.socket().shutdown(net::tcp::socket::shutdown_send, ignored);
    std::size_t drained = 0;
    while (drained < 2 * kMaxBody) {
      auto [ec, n] = co_await conn->stream.read_some(buf.data(), buf.size());
      if (ec) break;
      drained += n;
    }
  }
  conn->close();
}

class WebhookImpl final : public Webhook {
 public:
  WebhookImpl(net::tcp::acceptor acceptor, std::shared_ptr<Shared> shared)
      : acceptor_(std::move(acceptor)), shared_(std::move(shared)) {
    net::error_code ec;
    const auto ep = acceptor_.local_endpoint(ec);
    if (!ec) address_ = net::to_string(ep);
  }
  ~WebhookImpl() override { stop(); }

  void start() override {
    net::asio::co_spawn(acceptor_.get_executor(), accept_loop(acceptor_, shared_, conns_),
                        net::asio::detached);
  }

  void stop() override {
    if (shared_->stopped) return;
    shared_->stopped = true;
    net::error_code ec;
    acceptor_.close(ec);
    // Reviews in flight end now: the process is draining and the API server will retry (or apply
    // its failurePolicy) rather than wait for a listener that is going away.
    for (auto& w : conns_) {
      if (auto c = w.lock()) c->close();
    }
    conns_.clear();
  }

  std::string local_address() const override { return address_; }
  WebhookStats stats() const override { return shared_->stats; }

 private:
  // A static coroutine holding shared state only: the acceptor and the connection list are members
  // of the Webhook, which outlives the loop (stop() closes the acceptor before destruction).
  static net::awaitable<void> accept_loop(net::tcp::acceptor& acceptor, std::shared_ptr<Shared> sh,
                                          std::list<std::weak_ptr<Conn>>& conns) {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(net::use_awaitable_tuple);
      if (sh->stopped || ec == net::asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      if (sh->active >= kMaxConnections) {
        net::error_code ignored;
        sock.close(ignored);
        continue;
      }
      conns.remove_if([](const std::weak_ptr<Conn>& w) { return w.expired(); });
      maybe_reload(*sh);
      auto conn = std::make_shared<Conn>(std::move(sock), sh->ctx.get());
      conns.push_back(conn);
      ++sh->active;
      net::asio::co_spawn(acceptor.get_executor(), serve(sh, std::move(conn)), net::asio::detached);
    }
  }

  net::tcp::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
  std::list<std::weak_ptr<Conn>> conns_;
  std::string address_;
};

SslCtxPtr make_context(const config::WebhookSpec& spec, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    error = "webhook: cannot create a TLS context: " + tls::drain_errors();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // No renegotiation, no compression (CRIME), no session tickets (no ticket key to manage for a
  // listener only the API server talks to).
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx.get(), config::kDefaultCiphers) != 1) {
    error = "webhook: cipher list: " + tls::drain_errors();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), spec.cert.c_str()) != 1) {
    error = "ingress.webhook.certificate: cannot load " + spec.cert + ": " + tls::drain_errors();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), spec.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "ingress.webhook.key: cannot load " + spec.key + ": " + tls::drain_errors();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    error = "ingress.webhook.key: does not match the certificate: " + tls::drain_errors();
    return nullptr;
  }
  return ctx;
}

}  // namespace

std::unique_ptr<Webhook> Webhook::create(net::asio::io_context& io, const config::WebhookSpec& spec,
                                         Hooks hooks, std::string& error) {
  auto sh = std::make_shared<Shared>();
  sh->spec = spec;
  std::tie(sh->cert_time, sh->key_time) = file_times(spec);
  sh->checked = std::chrono::steady_clock::now();
  sh->ctx = make_context(spec, error);
  if (!sh->ctx) return nullptr;
  sh->hooks = std::move(hooks);
  auto ep = net::parse_endpoint(spec.listen);
  if (!ep) {
    error = "ingress.webhook.listen: " + ep.error().context;
    return nullptr;
  }
  auto acc = net::listen(io, *ep, false);
  if (!acc) {
    error = "ingress.webhook.listen: cannot listen on " + acc.error().context;
    return nullptr;
  }
  return std::make_unique<WebhookImpl>(std::move(*acc), std::move(sh));
}

}  // namespace phigate::server::detail
