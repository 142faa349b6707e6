#include "phigate/kube/client.hpp"

#include <llhttp.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <cstdint>
#include <vector>

#include "phigate/core/host_port.hpp"
#include "phigate/core/version.hpp"
#include "phigate/upstream/backend_tls.hpp"

namespace phigate::kube {

namespace {

constexpr std::size_t kReadChunk = 64u << 10;
/// Status line plus headers: an API server's are a few hundred bytes; a server sending endless
/// headers must not grow memory without bound.
constexpr std::size_t kMaxHead = 64u << 10;
/// An API server's certificate chain: leaf, maybe an intermediate or two, the cluster CA.
constexpr int kVerifyDepth = 8;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// Bytes that may go into a request line or header value we build: visible ASCII (and space where
/// `space`), so no caller-supplied path or type can split the request (CR LF injection).
bool header_safe(std::string_view s, bool space) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u == ' ' && space) continue;
    if (u < 0x21 || u > 0x7e) return false;
  }
  return true;
}

/// One response being parsed: llhttp's callbacks write here (llhttp_t::data).
struct Parse {
  bool stream = false;  // a watch: a 200 body is split into lines instead of kept whole
  int status = 0;
  std::string content_type;
  std::string field;
  bool field_is_content_type = false;
  std::size_t head_bytes = 0;
  bool head_too_large = false;
  bool body_too_large = false;
  bool informational = false;
  bool complete = false;
  std::string body;     // the whole body (request, or a non-200 stream)
  std::string pending;  // a 200 stream's bytes not yet split into lines

  bool lines() const { return stream && status == 200; }
  static Parse& of(llhttp_t* p) { return *static_cast<Parse*>(p->data); }

  int count_head(std::size_t len) {
    head_bytes += len;
    if (head_bytes > kMaxHead) {
      head_too_large = true;
      return -1;
    }
    return 0;
  }
};

const llhttp_settings_t& parse_settings() {
  static const llhttp_settings_t kSettings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_status = [](llhttp_t* p, const char*, std::size_t len) { return Parse::of(p).count_head(len); };
    s.on_header_field = [](llhttp_t* p, const char* at, std::size_t len) {
      auto& ps = Parse::of(p);
      if (ps.count_head(len) != 0) return -1;
      ps.field.append(at, len);
      return 0;
    };
    s.on_header_field_complete = [](llhttp_t* p) {
      auto& ps = Parse::of(p);
      ps.field_is_content_type = iequals(ps.field, "content-type");
      ps.field.clear();
      return 0;
    };
    s.on_header_value = [](llhttp_t* p, const char* at, std::size_t len) {
      auto& ps = Parse::of(p);
      if (ps.count_head(len) != 0) return -1;
      if (ps.field_is_content_type) ps.content_type.append(at, len);
      return 0;
    };
    s.on_header_value_complete = [](llhttp_t* p) {
      Parse::of(p).field_is_content_type = false;
      return 0;
    };
    s.on_headers_complete = [](llhttp_t* p) {
      auto& ps = Parse::of(p);
      ps.status = p->status_code;
      // We send no Expect and ask for no upgrade: an interim response is not the API server's.
      if (ps.status < 200) {
        ps.informational = true;
        return -1;
      }
      // A declared length over the cap fails before a byte of it is read.
      if ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > Client::kMaxBody && !ps.lines()) {
        ps.body_too_large = true;
        return -1;
      }
      return 0;
    };
    s.on_body = [](llhttp_t* p, const char* at, std::size_t len) {
      auto& ps = Parse::of(p);
      if (ps.lines()) {
        ps.pending.append(at, len);  // bounded by the caller: at most kMaxLine + one read
        return 0;
      }
      if (ps.body.size() + len > Client::kMaxBody) {
        ps.body_too_large = true;
        return -1;
      }
      ps.body.append(at, len);
      return 0;
    };
    s.on_message_complete = [](llhttp_t* p) {
      Parse::of(p).complete = true;
      return static_cast<int>(HPE_PAUSED);  // one response per connection: stop here
    };
    return s;
  }();
  return kSettings;
}

}  // namespace

namespace client_impl {

/// One request or watch: its socket, TLS, deadline. Shared by its coroutine and (for a watch) the
/// caller's Stream handle; the timer holds it weakly.
struct Op final : Client::Stream, std::enable_shared_from_this<Op> {
  explicit Op(net::asio::io_context& io) : resolver(io), socket(io), timer(io) {}

  void cancel() override {
    if (cancelled) return;
    cancelled = true;
    ++generation;
    net::error_code ec;
    timer.cancel();
    resolver.cancel();
    // The coroutine is suspended on this socket (one thread): it wakes with an error, sees
    // `cancelled` and returns without touching the SSL again.
    socket.close(ec);
  }

  /// (Re)starts the deadline: when it fires, pending waits are cancelled and `timed_out` says why.
  void arm(std::chrono::milliseconds d) {
    const std::uint64_t gen = ++generation;
    timer.expires_after(d);
    timer.async_wait([w = weak_from_this(), gen](net::error_code ec) {
      if (ec) return;
      const auto op = w.lock();
      if (!op || op->generation != gen || op->cancelled) return;
      op->timed_out = true;
      net::error_code ignored;
      op->resolver.cancel();
      op->socket.cancel(ignored);
    });
  }

  net::tcp::resolver resolver;
  net::tcp::socket socket;
  net::asio::steady_timer timer;
  upstream::SslPtr ssl;
  std::uint64_t generation = 0;
  bool cancelled = false;
  bool timed_out = false;
};

/// The client's state (Client::Impl is this; the free functions below name it, the private
/// nested name they cannot).
struct State {
  State(net::asio::io_context& io_, Credentials c) : io(io_), creds(std::move(c)) {}

  net::asio::io_context& io;
  Credentials creds;
  TokenSource tokens{creds};
  std::string host;  // to resolve and connect to (brackets off)
  std::string port;
  std::string authority;  // Host header: server without the scheme
  std::shared_ptr<const upstream::BackendTls> tls;
  std::string setup_error;  // set: every request fails with it (bad server URL, CA, key)
  std::uint64_t requests = 0;
  std::vector<std::weak_ptr<Op>> ops;  // live ones, cancelled when the Client goes

  std::shared_ptr<Op> new_op() {
    std::erase_if(ops, [](const std::weak_ptr<Op>& w) { return w.expired(); });
    auto op = std::make_shared<Op>(io);
    ops.push_back(op);
    return op;
  }

  std::string what(std::string_view m) const { return "kube API " + creds.server + ": " + std::string(m); }
};

}  // namespace client_impl

using client_impl::Op;
using client_impl::State;

struct Client::Impl : State {
  using State::State;
};

namespace {

struct Job {
  std::shared_ptr<State> self;
  std::shared_ptr<Op> op;
  RequestOptions options;
  bool stream = false;
  std::chrono::milliseconds idle{0};
  std::function<void(std::string_view)> on_line;
  Client::ResponseHandler done;
};

/// Connects and runs the TLS handshake; the error text when it failed.
net::awaitable<std::optional<std::string>> connect(State& self, Op& op) {
  auto [rec, results] = co_await op.resolver.async_resolve(self.host, self.port, net::use_awaitable_tuple);
  if (op.cancelled) co_return std::string();
  if (op.timed_out) co_return "timed out resolving " + self.host;
  if (rec) co_return "cannot resolve " + self.host + ": " + rec.message();
  auto [cec, ep] = co_await net::asio::async_connect(op.socket, results, net::use_awaitable_tuple);
  (void)ep;
  if (op.cancelled) co_return std::string();
  if (op.timed_out) co_return std::string("timed out connecting");
  if (cec) co_return "connect failed: " + cec.message();
  op.ssl = self.tls->new_ssl();
  if (!op.ssl || SSL_set_fd(op.ssl.get(), op.socket.native_handle()) != 1) {
    co_return std::string("cannot create a TLS connection");
  }
  const auto failure = co_await upstream::handshake(op.socket, op.ssl.get());
  if (op.cancelled) co_return std::string();
  if (op.timed_out) co_return std::string("timed out in the TLS handshake");
  if (failure) {
    const bool verify =
        failure->reason == upstream::kTlsUnknownCa || failure->reason == upstream::kTlsNameMismatch ||
        failure->reason == upstream::kTlsExpired || failure->reason == upstream::kTlsCertificate;
    co_return (verify ? "certificate verify failed: " : "TLS handshake failed: ") + failure->detail;
  }
  co_return std::nullopt;
}

std::optional<std::string> build_request(State& self, const RequestOptions& o, std::string& out) {
  if (o.method.empty() || !header_safe(o.method, false)) return "invalid method";
  if (o.path.empty() || o.path.front() != '/' || !header_safe(o.path, false)) return "invalid request path";
  if (!header_safe(o.content_type, true)) return "invalid content type";
  const std::string& token = self.tokens.current();
  if (!header_safe(token, false)) return "the bearer token holds characters not allowed in a header";
  out.clear();
  out.reserve(512 + o.body.size());
  out += o.method + " " + o.path + " HTTP/1.1\r\nHost: " + self.authority + "\r\nUser-Agent: phigate/";
  out += core::version();
  out += "\r\nAccept: application/json\r\n";
  if (!token.empty()) out += "Authorization: Bearer " + token + "\r\n";
  const bool has_body = !o.body.empty() || o.method == "POST" || o.method == "PUT" || o.method == "PATCH";
  if (has_body) {
    out += "Content-Type: " + (o.content_type.empty() ? std::string("application/json") : o.content_type) +
           "\r\n";
    out += "Content-Length: " + std::to_string(o.body.size()) + "\r\n";
  }
  // One connection per call (see client.hpp): the server closes it after the response.
  out += "Connection: close\r\n\r\n";
  out += o.body;
  return std::nullopt;
}

/// Hands complete lines of a 200 watch body to `on_line`; false when the caller cancelled.
bool deliver_lines(Parse& ps, Op& op, const std::function<void(std::string_view)>& on_line, bool flush) {
  std::size_t start = 0;
  for (;;) {
    const auto nl = ps.pending.find('\n', start);
    std::string_view line;
    if (nl == std::string::npos) {
      if (!flush || start >= ps.pending.size()) break;
      line = std::string_view(ps.pending).substr(start);
      start = ps.pending.size();
    } else {
      line = std::string_view(ps.pending).substr(start, nl - start);
      start = nl + 1;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    on_line(line);
    if (op.cancelled) return false;
  }
  ps.pending.erase(0, start);
  return true;
}

net::awaitable<void> run(Job job) {
  State& self = *job.self;
  Op& op = *job.op;
  const auto fail = [&](std::string_view m) {
    if (op.cancelled) return;
    op.cancelled = true;  // no second call
    net::error_code ec;
    op.timer.cancel();
    op.socket.close(ec);
    job.done(std::nullopt, TransportError{self.what(m)});
  };
  if (!self.setup_error.empty()) {
    fail(self.setup_error);
    co_return;
  }
  const std::chrono::milliseconds limit = job.stream ? job.idle : job.options.timeout;
  op.arm(limit);
  std::string request;
  if (auto bad = build_request(self, job.options, request)) {
    fail(*bad);
    co_return;
  }
  if (auto err = co_await connect(self, op)) {
    fail(*err);  // empty only when cancelled: then fail() does nothing
    co_return;
  }
  ++self.requests;
  const auto wr = co_await upstream::tls_write_all(op.socket, op.ssl.get(), request);
  if (op.cancelled) co_return;
  if (op.timed_out) {
    fail("timed out sending the request");
    co_return;
  }
  if (wr.ec) {
    fail("cannot send the request: " +
         (wr.protocol_error ? upstream::classify_failure(op.ssl.get()).detail : wr.ec.message()));
    co_return;
  }

  Parse ps;
  ps.stream = job.stream;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &parse_settings());
  parser.data = &ps;
  std::vector<char> buf(kReadChunk);
  for (;;) {
    const auto rd = co_await upstream::tls_read_some(op.socket, op.ssl.get(), buf.data(), buf.size());
    if (op.cancelled) co_return;
    if (op.timed_out) {
      fail(job.stream ? "no byte for " + std::to_string(limit.count()) + " ms"
                      : "no complete response within " + std::to_string(limit.count()) + " ms");
      co_return;
    }
    const bool eof = rd.ec == net::asio::error::eof;
    if (rd.ec && !eof) {
      fail("read failed: " +
           (rd.protocol_error ? upstream::classify_failure(op.ssl.get()).detail : rd.ec.message()));
      co_return;
    }
    if (job.stream && !eof) op.arm(limit);  // idle: reset per received chunk
    const llhttp_errno_t e = eof ? llhttp_finish(&parser) : llhttp_execute(&parser, buf.data(), rd.bytes);
    if (ps.head_too_large) {
      fail("response headers larger than " + std::to_string(kMaxHead) + " bytes");
      co_return;
    }
    if (ps.body_too_large) {
      fail("response body larger than " + std::to_string(Client::kMaxBody) + " bytes");
      co_return;
    }
    if (ps.informational) {
      fail("unexpected interim response " + std::to_string(ps.status));
      co_return;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
      fail(eof ? std::string("connection closed before the response ended")
               : std::string("malformed HTTP response: ") + llhttp_errno_name(e));
      co_return;
    }
    if (ps.lines()) {
      if (!deliver_lines(ps, op, job.on_line, ps.complete)) co_return;
      if (ps.pending.size() > Client::kMaxLine) {
        fail("watch event line longer than " + std::to_string(Client::kMaxLine) + " bytes");
        co_return;
      }
    }
    if (ps.complete) break;
    if (eof) {
      fail("connection closed before the response ended");
      co_return;
    }
  }
  op.cancelled = true;  // done: a late cancel() or ~Client is a no-op
  net::error_code ec;
  op.timer.cancel();
  op.socket.close(ec);
  Response r;
  r.status = ps.status;
  r.content_type = std::move(ps.content_type);
  r.body = std::move(ps.body);
  job.done(std::move(r), std::nullopt);
}

void start(Job job) {
  auto& io = job.self->io;
  // Posted, so `done` never runs inside request()/stream() (callers need not be reentrant).
  net::asio::post(io, [job = std::move(job), &io]() mutable {
    net::asio::co_spawn(io, run(std::move(job)), net::asio::detached);
  });
}

}  // namespace

Client::Client(net::asio::io_context& io, Credentials creds)
    : impl_(std::make_shared<Impl>(io, std::move(creds))) {
  Impl& i = *impl_;
  constexpr std::string_view kScheme = "https://";
  std::uint16_t port = 0;
  if (i.creds.server.compare(0, kScheme.size(), kScheme) != 0) {
    i.setup_error = "the server is not an https:// URL";
    return;
  }
  i.authority = i.creds.server.substr(kScheme.size());
  if (!core::split_host_port(i.authority, i.host, port) || port == 0) {
    i.setup_error = "the server is not https://host:port";
    return;
  }
  i.port = std::to_string(port);
  // Never the system store, never unverified: only the cluster's CA vouches for the API server.
  if (i.creds.ca_pem.empty()) {
    i.setup_error = "no cluster CA (phigate never skips verifying the API server)";
    return;
  }
  upstream::BackendTlsSpec spec;
  spec.ca_pem = i.creds.ca_pem;
  spec.cert_pem = i.creds.client_cert_pem;
  spec.key_pem = i.creds.client_key_pem;
  spec.verify_name = i.creds.server_name.empty() ? i.host : i.creds.server_name;
  spec.server_name = true;  // SNI for a name; new_ssl leaves it out for an IP (RFC 6066 §3)
  spec.verify = true;
  spec.verify_depth = kVerifyDepth;
  auto built = upstream::BackendTls::build(spec);
  if (!built) {
    i.setup_error = "TLS settings: " + built.error().context;
    return;
  }
  i.tls = std::move(built.value());
}

Client::~Client() {
  for (const auto& w : impl_->ops) {
    if (auto op = w.lock()) op->cancel();
  }
}

void Client::request(RequestOptions options, ResponseHandler done) {
  start(Job{impl_, impl_->new_op(), std::move(options), false, {}, nullptr, std::move(done)});
}

std::shared_ptr<Client::Stream> Client::stream(std::string path, std::chrono::milliseconds idle,
                                               std::function<void(std::string_view line)> on_line,
                                               ResponseHandler on_end) {
  auto op = impl_->new_op();
  RequestOptions o;
  o.path = std::move(path);
  start(Job{impl_, op, std::move(o), true, idle, std::move(on_line), std::move(on_end)});
  return op;
}

const Credentials& Client::credentials() const noexcept {
  return impl_->creds;
}

std::uint64_t Client::requests() const noexcept {
  return impl_->requests;
}

std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    // RFC 3986 §2.3 unreserved characters stay; everything else is percent-encoded.
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' || u == '.' ||
        u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace phigate::kube
