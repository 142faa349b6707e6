#include "connection.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>
#include <string_view>
#include <thread>

#include "http_request.hpp"
#include "stream.hpp"

namespace phigate::test_upstream {

namespace {

constexpr std::string_view kPattern = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::size_t kBlockBytes = 64 * 1024;
constexpr std::size_t kChunkBytes = 16 * 1024;
constexpr std::uint64_t kMaxDelayMs = 3'600'000;
constexpr std::uint64_t kMaxInterims = 10'000'000;
// What every misbehaviour writes where no client may ever see it: a test that finds this in any
// response has caught one client receiving bytes meant for no one (or for someone else).
constexpr std::string_view kMarker = "PHI-of-someone-else";

enum class ResetPoint { None, BeforeHeaders, MidBody };
enum class Stray { None, Same, Later };
enum class Early { None, Keep, Close };
enum class Stale { None, Close, Next };

/// What the query string asks of the response.
struct Behaviour {
  int status = 200;
  std::optional<std::uint64_t> bytes;
  bool echo = false;
  bool chunked = false;
  bool close = false;
  std::uint64_t delay_ms = 0;
  ResetPoint reset = ResetPoint::None;
  // Misbehaviours (README "Misbehaviour"): each writes kMarker where a correct proxy never forwards it.
  Stray stray = Stray::None;
  std::uint64_t stray_delay_ms = 50;
  bool bodiless_body = false;
  bool overlong = false;
  int interim = 0;  // 1xx status sent before the final response; 0: none
  std::uint64_t interims = 1;
  bool interims_endless = false;
  bool interim_body = false;
  bool twice = false;
  bool cl_te = false;
  Early early = Early::None;
  Stale stale = Stale::None;
  std::string fields;            // header=Name:Value lines ("Name: Value\r\n"), in order
  std::uint64_t big_header = 0;  // big_header=N: a field X-Big of N bytes (an oversized head)
  bool garbage = false;          // garbage=1: an answer that is not HTTP, then close
};

// %XX-decoded; nullopt for a bad escape.
std::optional<std::string> percent_decode(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      out += v[i] == '+' ? ' ' : v[i];
      continue;
    }
    if (i + 2 >= v.size()) return std::nullopt;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(v[i + 1]), lo = hex(v[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// "echo", "echo=1" and "echo=true" all switch a flag on.
std::optional<bool> parse_flag(std::string_view v) {
  if (v.empty() || v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return std::nullopt;
}

// "123", "64k" (x1024) or "10m" (x1048576).
std::optional<std::uint64_t> parse_size(std::string_view v) {
  std::uint64_t unit = 1;
  if (!v.empty() && (v.back() == 'k' || v.back() == 'K')) unit = 1024;
  if (!v.empty() && (v.back() == 'm' || v.back() == 'M')) unit = 1024 * 1024;
  if (unit != 1) v.remove_suffix(1);
  const auto n = parse_decimal(v);
  if (!n || *n > std::numeric_limits<std::uint64_t>::max() / unit) return std::nullopt;
  return *n * unit;
}

// True when the target's query has no parameter `name` (a query parameter wins over a /__control mode).
bool target_query_lacks(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return true;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.substr(0, param.find('=')) == name) return false;
  }
  return true;
}

// Unknown parameters are ignored, so tests may tag requests freely. The last occurrence wins.
std::string parse_behaviour(std::string_view target, Behaviour& b) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = param.find('=');
    const std::string_view key = param.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
    bool ok = true;
    if (key == "status") {
      const auto n = parse_decimal(value);
      ok = n && *n >= 200 && *n <= 999;
      if (ok) b.status = static_cast<int>(*n);
    } else if (key == "bytes") {
      b.bytes = parse_size(value);
      ok = b.bytes.has_value();
    } else if (bool* flag_member = key == "echo"            ? &b.echo
                                   : key == "chunked"       ? &b.chunked
                                   : key == "close"         ? &b.close
                                   : key == "bodiless_body" ? &b.bodiless_body
                                   : key == "overlong"      ? &b.overlong
                                   : key == "interim_body"  ? &b.interim_body
                                   : key == "twice"         ? &b.twice
                                   : key == "cl_te"         ? &b.cl_te
                                   : key == "garbage"       ? &b.garbage
                                                            : nullptr) {
      const auto flag = parse_flag(value);
      ok = flag.has_value();
      if (ok) *flag_member = *flag;
    } else if (key == "big_header") {
      const auto n = parse_size(value);
      ok = n && *n <= (16u << 20);
      if (ok) b.big_header = *n;
    } else if (key == "delay_ms" || key == "stray_delay_ms") {
      const auto n = parse_decimal(value);
      ok = n && *n <= kMaxDelayMs;
      if (ok) (key == "delay_ms" ? b.delay_ms : b.stray_delay_ms) = *n;
    } else if (key == "interim") {
      // 101 switches protocols rather than preceding a final response: not an interim here.
      const auto n = parse_decimal(value);
      ok = n && *n >= 100 && *n <= 199 && *n != 101;
      if (ok) b.interim = static_cast<int>(*n);
    } else if (key == "interims") {
      const auto n = parse_decimal(value);
      b.interims_endless = value == "endless";
      ok = b.interims_endless || (n && *n >= 1 && *n <= kMaxInterims);
      if (ok && n) b.interims = *n;
    } else if (key == "stray") {
      ok = value == "same" || value == "later" || value == "none";
      if (ok) b.stray = value == "same" ? Stray::Same : value == "later" ? Stray::Later : Stray::None;
    } else if (key == "early") {
      ok = value == "keep" || value == "close" || value == "none";
      if (ok) b.early = value == "keep" ? Early::Keep : value == "close" ? Early::Close : Early::None;
    } else if (key == "stale") {
      ok = value == "close" || value == "next" || value == "none";
      if (ok) b.stale = value == "close" ? Stale::Close : value == "next" ? Stale::Next : Stale::None;
    } else if (key == "header") {
      // header=Name:Value (percent-decoded): a field of the backend's own, e.g. its own
      // Access-Control-Allow-Origin, for tests that a proxy replaces it. No CR, LF or NUL.
      const auto decoded = percent_decode(value);
      const auto colon = decoded ? decoded->find(':') : std::string::npos;
      ok = decoded && colon != std::string::npos && colon != 0 && colon < 256 && decoded->size() < 8192 &&
           decoded->find_first_of(std::string("\r\n\0", 3)) == std::string::npos &&
           decoded->find_first_of(" \t") > colon;
      if (ok) {
        b.fields += decoded->substr(0, colon);
        b.fields += ": ";
        b.fields += decoded->substr(colon + 1);
        b.fields += "\r\n";
      }
    } else if (key == "reset") {
      if (value == "before_headers") {
        b.reset = ResetPoint::BeforeHeaders;
      } else if (value == "mid_body") {
        b.reset = ResetPoint::MidBody;
      } else if (value == "none") {
        b.reset = ResetPoint::None;
      } else {
        ok = false;
      }
    }
    if (!ok) return "invalid query parameter '" + std::string(param) + "'";
  }
  return {};
}

struct StatusReason {
  int status;
  const char* reason;
};

constexpr StatusReason kReasons[] = {
    {100, "Continue"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char* reason_phrase(int status) {
  for (const auto& [code, reason] : kReasons) {
    if (code == status) return reason;
  }
  return "Unknown";
}

/// The response body without materialising it: the fixed pattern, or bytes owned by the caller.
class BodySource {
 public:
  static BodySource pattern(std::uint64_t size) { return BodySource(size, std::nullopt); }
  static BodySource view(std::string_view bytes) { return BodySource(bytes.size(), bytes); }

  std::uint64_t size() const { return size_; }

  /// Up to `max` bytes from `offset` (< size()); the view stays valid as long as the source does.
  std::string_view at(std::uint64_t offset, std::size_t max) const {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>({max, kBlockBytes, size_ - offset}));
    if (fixed_) return fixed_->substr(static_cast<std::size_t>(offset), n);
    return {pattern_table().data() + offset % kPattern.size(), n};
  }

 private:
  BodySource(std::uint64_t size, std::optional<std::string_view> fixed) : size_(size), fixed_(fixed) {}

  // One block of pattern plus one period: any block-sized window starting at offset % 36 fits.
  static const std::string& pattern_table() {
    static const std::string table = [] {
      std::string t(kBlockBytes + kPattern.size(), '\0');
      for (std::size_t i = 0; i < t.size(); ++i) t[i] = kPattern[i % kPattern.size()];
      return t;
    }();
    return table;
  }

  std::uint64_t size_;
  std::optional<std::string_view> fixed_;
};

/// Write buffer that coalesces small writes (head and chunk framing) and passes big blocks through.
class Output {
 public:
  explicit Output(Stream& stream) : stream_(stream) { buf_.reserve(kBlockBytes); }

  void append(std::string_view data) {
    if (buf_.size() + data.size() > kBlockBytes) {
      flush();
      if (data.size() >= kBlockBytes / 2) {
        ok_ = ok_ && stream_.write_all(data);
        return;
      }
    }
    buf_.append(data);
  }
  bool flush() {
    ok_ = ok_ && stream_.write_all(buf_);
    buf_.clear();
    return ok_;
  }
  /// False once a write failed (the peer went away).
  bool ok() const { return ok_; }

 private:
  Stream& stream_;
  std::string buf_;
  bool ok_ = true;
};

/// Incremental SHA-256 of the request body (OpenSSL EVP).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
    if (!ok_) ERR_clear_error();
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data) { ok_ = ok_ && EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1; }
  /// Lowercase hex digest; call once.
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, md, &len) != 1) {
      ERR_clear_error();
      return "sha256-failed";
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kDigits[md[i] >> 4];
      out += kDigits[md[i] & 0xf];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_;
};

/// One line of the record file; fields are written only once known.
struct Record {
  std::uint64_t conn = 0;
  std::uint64_t seq = 0;
  const RequestHead* head = nullptr;  ///< set once the head parsed
  bool body_read = false;             ///< set once body reading started
  std::uint64_t body_bytes = 0;
  std::string body_sha256;
  bool chunked = false;
  const Headers* trailers = nullptr;
  std::string error;
  bool early = false;       ///< answered before the body was read (early=)
  bool unanswered = false;  ///< read in full, then the connection closed without an answer (stale=next)
};

// JSON string of raw bytes. Bytes >= 0x7f and controls become \u00XX, so the file is pure ASCII and a
// reader recovers the exact bytes by encoding the decoded string as Latin-1.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\u00";
      out += kDigits[u >> 4];
      out += kDigits[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_json_fields(std::string& out, const Headers& fields) {
  out += '[';
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += '[';
    append_json_string(out, fields[i].first);
    out += ',';
    append_json_string(out, fields[i].second);
    out += ']';
  }
  out += ']';
}

enum class Next { KeepAlive, Close, Abort };

bool wants_keep_alive(const RequestHead& head) {
  if (has_token(head.headers, "Connection", "close")) return false;
  // RFC 9112 §9.3: HTTP/1.0 persists only when the client asked for keep-alive.
  if (head.version == "1.0") return has_token(head.headers, "Connection", "keep-alive");
  return true;
}

class Connection {
 public:
  Connection(const ServerConfig& config, int fd, std::uint64_t id)
      : config_(config), stream_(fd, config.tls), reader_(stream_), id_(id) {}

  void run() {
    if (!stream_.handshake()) return;
    if (stream_.is_tls()) {
      tls_json_ = ",\"tls\":{\"version\":";
      append_json_string(tls_json_, stream_.tls_version());
      tls_json_ += ",\"sni\":";
      append_json_string(tls_json_, stream_.tls_sni());
      tls_json_ += ",\"alpn\":";
      append_json_string(tls_json_, stream_.tls_alpn());
      tls_json_ += '}';
    }
    for (std::uint64_t seq = 1;; ++seq) {
      const Next next = serve_request(seq);
      if (next == Next::KeepAlive) continue;
      if (next == Next::Close) stream_.close_gracefully();
      return;
    }
  }

 private:
  Next serve_request(std::uint64_t seq);
  Next send_response(const RequestHead& head, const Behaviour& behaviour, std::string_view echo_body,
                     std::uint64_t seq);
  Next reject(Record& record, std::string reason);
  /// /__control and --health-path: answered here, never recorded. nullopt: an ordinary request.
  std::optional<Next> serve_special(const RequestHead& head, std::uint64_t seq);
  void write_record(const Record& record) const;
  void append_record_line(std::string_view line) const;
  /// Appends {"conn":N,"seq":S,"marker_sent":true}: every marker byte of response S has been written.
  void write_marker_record(std::uint64_t seq) const;
  std::string upstream_fields(std::uint64_t seq) const;
  /// A complete unsolicited response whose head and body carry kMarker (stray=, an answer to nothing).
  std::string stray_response() const;

  const ServerConfig& config_;
  Stream stream_;
  Reader reader_;
  std::uint64_t id_;
  std::string tls_json_;  // the "tls" member of every record on this connection, if TLS
  // The current request's X-Request-Id, echoed as X-Echo-Request-Id so that a test can tell which
  // request a response answers (a proxy that hands one client another's response fails that check).
  std::optional<std::string> request_id_;
  // stale=next: the next request on this connection is read, recorded and never answered.
  bool drop_next_ = false;
};

Next Connection::serve_request(std::uint64_t seq) {
  Record record;
  record.conn = id_;
  record.seq = seq;
  request_id_.reset();
  std::string head_text;
  std::string error;
  switch (read_request_head(reader_, head_text, error)) {
    case ReadResult::Closed:
      return Next::Close;
    case ReadResult::Error:
      return reject(record, error);
    case ReadResult::Ok:
      break;
  }
  RequestHead head;
  error = parse_request_head(head_text, head);
  // Once the request line parsed, an error record still shows it and the fields before the bad one.
  if (!head.method.empty()) record.head = &head;
  if (!error.empty()) return reject(record, error);
  if (const auto id = first_field(head.headers, "X-Request-Id")) request_id_ = std::string(*id);
  Framing framing;
  if (error = determine_framing(head, framing); !error.empty()) return reject(record, error);
  if (!framing.has_body()) {
    if (const auto handled = serve_special(head, seq)) return *handled;
  }
  Behaviour behaviour;
  const std::string query_error = parse_behaviour(head.target, behaviour);
  // Modes set by /__control (README "Control requests"): a query parameter still wins.
  if (const int forced = config_.force_status.load();
      forced != 0 && target_query_lacks(head.target, "status"))
    behaviour.status = forced;
  if (config_.close_keepalive.load()) behaviour.close = true;
  behaviour.delay_ms += config_.stall_ms.load();
  if (config_.reset_all.load()) behaviour.reset = ResetPoint::BeforeHeaders;

  // early=: answer from the head alone, as a backend rejecting an upload does (RFC 9110 §15.5.14). The
  // record is written first, without body fields, so that a test can count the request.
  if (behaviour.early != Early::None && framing.has_body() && query_error.empty() && !drop_next_) {
    record.early = true;
    write_record(record);
    const Next next = send_response(head, behaviour, {}, seq);
    if (next != Next::KeepAlive || behaviour.early == Early::Close)
      return next == Next::Abort ? next : Next::Close;
    Headers trailers;
    // Keep: the rest of the body is read and dropped; a proxy that reused the connection before it had
    // sent all of it gets its next request swallowed as body bytes.
    if (!read_body(
            reader_, framing, [](std::string_view) {}, trailers, error))
      return Next::Abort;
    return Next::KeepAlive;
  }

  // RFC 9110 §10.1.1: the client may wait for this before sending the body; never to HTTP/1.0 clients.
  if (framing.has_body() && head.version == "1.1" && has_token(head.headers, "Expect", "100-continue")) {
    if (!stream_.write_all("HTTP/1.1 100 Continue\r\n\r\n")) return Next::Abort;
  }

  Sha256 sha;
  std::string echo_body;
  const bool keep_echo = behaviour.echo && query_error.empty();
  Headers trailers;
  record.body_read = true;
  record.chunked = framing.kind == BodyFraming::Chunked;
  record.trailers = &trailers;
  const bool body_ok = read_body(
      reader_, framing,
      [&](std::string_view data) {
        sha.update(data);
        record.body_bytes += data.size();
        if (keep_echo) echo_body.append(data);
      },
      trailers, error);
  record.body_sha256 = sha.hex();
  if (!body_ok) return reject(record, error);
  // stale=next on the previous request: this one arrived on a connection the backend had meant to close.
  // It is recorded (it reached the server, so re-sending it would repeat it) and never answered.
  if (drop_next_) {
    record.unanswered = true;
    write_record(record);
    return Next::Close;
  }
  if (!query_error.empty()) return reject(record, query_error);
  // Before the response: a client that has the response can rely on the record being there.
  write_record(record);

  if (behaviour.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(behaviour.delay_ms));
  if (behaviour.reset == ResetPoint::BeforeHeaders) {
    stream_.reset();
    return Next::Abort;
  }
  Next next = send_response(head, behaviour, echo_body, seq);
  // RFC 9112 §6.1: a chunked HTTP/1.0 request leaves framing in doubt; close after answering.
  if (next == Next::KeepAlive && framing.kind == BodyFraming::Chunked && head.version == "1.0") {
    next = Next::Close;
  }
  return next;
}

std::string Connection::stray_response() const {
  const std::string body = std::string(kMarker) + "\n";
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nX-Upstream-Name: " + config_.name + "\r\nX-Stray: " + std::string(kMarker) + "\r\n\r\n" + body;
}

Next Connection::send_response(const RequestHead& head, const Behaviour& behaviour,
                               std::string_view echo_body, std::uint64_t seq) {
  const BodySource body = behaviour.echo    ? BodySource::view(echo_body)
                          : behaviour.bytes ? BodySource::pattern(*behaviour.bytes)
                                            : BodySource::view("ok\n");
  // RFC 9110 §6.4.1: 204 and 304 have no content and carry no Content-Length here.
  const bool bodiless_status = behaviour.status == 204 || behaviour.status == 304;
  // HTTP/1.0 has no chunked coding (RFC 9112 §7): delimit such a body by closing instead.
  const bool close_delimited = behaviour.chunked && head.version == "1.0" && !bodiless_status;
  // cl_te=1 forces chunked so that both framing fields are present.
  const bool chunked = (behaviour.chunked || behaviour.cl_te) && !close_delimited && !bodiless_status;
  // keepalive=ignore_close: a misbehaving backend that keeps an HTTP/1.1 connection open although
  // the request said Connection: close (a proxy must not reuse it anyway).
  const bool ignores_close = config_.ignore_close.load() && head.version == "1.1";
  const bool keep_alive = !behaviour.close && !close_delimited && behaviour.early != Early::Close &&
                          (wants_keep_alive(head) || ignores_close);
  const bool send_body = head.method != "HEAD" && !bodiless_status;

  Output out(stream_);
  // interim=: RFC 9110 §15.2 lets any number of 1xx precede the final response; a proxy must bound
  // them or one backend holds a worker (and its memory) forever.
  if (behaviour.interim != 0) {
    std::string interim =
        "HTTP/1.1 " + std::to_string(behaviour.interim) + " " + reason_phrase(behaviour.interim) + "\r\n";
    if (behaviour.interim == 103) interim += "Link: </style.css>; rel=preload; as=style\r\n";
    interim += "\r\n";
    // A 1xx has no content (RFC 9112 §6.3): bytes after its head are the start of the next response.
    if (behaviour.interim_body) interim += kMarker;
    for (std::uint64_t i = 0; behaviour.interims_endless || i < behaviour.interims; ++i) {
      out.append(interim);
      if (!out.ok()) return Next::Abort;
    }
  }

  if (behaviour.garbage) {
    // Not HTTP at all: an auth service (or backend) answering nonsense.
    out.append("SSH-2.0-nonsense garbage\r\n\r\n");
    out.flush();
    return Next::Close;
  }
  std::string response = "HTTP/1.1 " + std::to_string(behaviour.status) + " " +
                         reason_phrase(behaviour.status) + "\r\nContent-Type: text/plain\r\n";
  if (chunked) response += "Transfer-Encoding: chunked\r\n";
  // RFC 9112 §6.3: with both fields Transfer-Encoding wins, and the message "ought to be handled as an
  // error" and the connection closed: the request-smuggling shape. Content-Length is the decoded size, so
  // a proxy that trusts it leaves chunk framing behind on the connection.
  if ((!chunked || behaviour.cl_te) && !bodiless_status && !close_delimited) {
    response += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  response += upstream_fields(seq);
  response += behaviour.fields;
  if (behaviour.big_header != 0) response += "X-Big: " + std::string(behaviour.big_header, 'a') + "\r\n";
  if (!keep_alive) {
    response += "Connection: close\r\n";
  } else if (head.version == "1.0") {
    response += "Connection: keep-alive\r\n";
  }
  response += "\r\n";

  out.append(response);
  const std::uint64_t total = send_body ? body.size() : 0;
  const std::uint64_t limit = behaviour.reset == ResetPoint::MidBody ? total / 2 : total;
  for (std::uint64_t offset = 0; offset < limit;) {
    const auto max = static_cast<std::size_t>(
        std::min<std::uint64_t>(chunked ? kChunkBytes : kBlockBytes, limit - offset));
    const std::string_view piece = body.at(offset, max);
    if (chunked) {
      char size_line[24];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece.size());
      out.append(size_line);
      out.append(piece);
      out.append("\r\n");
    } else {
      out.append(piece);
    }
    offset += piece.size();
  }
  if (behaviour.reset == ResetPoint::MidBody) {
    out.flush();
    stream_.reset();
    return Next::Abort;
  }
  if (chunked && send_body) out.append("0\r\n\r\n");
  // RFC 9110 §9.3.2, §15.3.5, §15.4.5: HEAD, 204 and 304 answers end at the empty line; these bytes
  // belong to no response.
  if (behaviour.bodiless_body && !send_body) out.append(std::string(kMarker) + "\n");
  // Content-Length said where the body ends (RFC 9112 §6.2); these bytes lie beyond it.
  if (behaviour.overlong) out.append(std::string(kMarker) + "\n");
  // The response-splitting shape: a whole second response in the same write, answering nothing.
  if (behaviour.stray == Stray::Same) out.append(stray_response());
  // A second full response to the same request, echoing the same id: only the marker gives it away.
  // Same write as the first: a later write could land after the proxy reused the connection for the
  // next request, where no intermediary can tell it from that request's answer.
  if (behaviour.twice) {
    const std::string body2 = std::string(kMarker) + "\n";
    out.append("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
               std::to_string(body2.size()) + "\r\n" + upstream_fields(seq) + "\r\n" + body2);
  }
  if (!out.flush()) return Next::Abort;
  if (behaviour.stray == Stray::Later) {
    // Unsolicited bytes on what the proxy believes is an idle pooled connection: whoever's request
    // goes over it next must not get them.
    std::this_thread::sleep_for(std::chrono::milliseconds(behaviour.stray_delay_ms));
    if (!stream_.write_all(stray_response())) return Next::Abort;
  }
  // Tests wait for this line (not for a fixed time) before the next client goes, so that the marker is
  // already on the proxy's connection when the proxy would reuse it.
  const bool sent_marker = (behaviour.bodiless_body && !send_body) || behaviour.overlong || behaviour.twice ||
                           behaviour.stray != Stray::None ||
                           (behaviour.interim != 0 && behaviour.interim_body);
  if (sent_marker) write_marker_record(seq);
  if (!keep_alive) return Next::Close;
  // stale=close: the response promised keep-alive, yet the backend goes away (an idle timeout the proxy
  // does not know). stale=next: the same, but only after the next request has arrived, so the proxy
  // cannot see it coming and must not re-send a non-idempotent request (RFC 9110 §9.2.2).
  if (behaviour.stale == Stale::Close) return Next::Close;
  if (behaviour.stale == Stale::Next) drop_next_ = true;
  return Next::KeepAlive;
}

std::optional<Next> Connection::serve_special(const RequestHead& head, std::uint64_t seq) {
  const std::string_view target = head.target;
  const std::string_view path = target.substr(0, target.find('?'));
  std::string body;
  int status = 200;
  if (path == "/__control") {
    const auto q = target.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view param = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      const auto eq = param.find('=');
      const std::string_view key = param.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
      bool ok = true;
      if (key == "health" && (value == "ok" || value == "fail")) {
        config_.health_ok.store(value == "ok");
      } else if (key == "status") {
        const auto n = parse_decimal(value);
        ok = n && (*n == 0 || (*n >= 200 && *n <= 999));
        if (ok) config_.force_status.store(static_cast<int>(*n));
      } else if (key == "keepalive" && (value == "close" || value == "keep" || value == "ignore_close")) {
        config_.close_keepalive.store(value == "close");
        config_.ignore_close.store(value == "ignore_close");
      } else if (key == "stall_ms") {
        const auto n = parse_decimal(value);
        ok = n && *n <= kMaxDelayMs;
        if (ok) config_.stall_ms.store(*n);
      } else if (key == "reset") {
        const auto f = parse_flag(value);
        ok = f.has_value();
        if (ok) config_.reset_all.store(*f);
      } else {
        ok = false;
      }
      if (!ok) {
        status = 400;
        body = "bad control parameter '" + std::string(param) + "'\n";
        break;
      }
    }
    if (status == 200) {
      body = std::string("health=") + (config_.health_ok.load() ? "ok" : "fail") +
             " probes=" + std::to_string(config_.health_probes.load()) +
             " status=" + std::to_string(config_.force_status.load()) + "\n";
    }
  } else if (!config_.health_path.empty() && path == config_.health_path) {
    config_.health_probes.fetch_add(1);
    if (const auto stall = config_.stall_ms.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(stall));
    if (config_.reset_all.load()) {
      stream_.reset();
      return Next::Abort;
    }
    status = config_.health_ok.load() ? 200 : 503;
    body = status == 200 ? "healthy\n" : "unhealthy\n";
  } else {
    return std::nullopt;
  }
  const bool keep_alive = wants_keep_alive(head) && !config_.close_keepalive.load();
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                         "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\n" + upstream_fields(seq) + (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
  if (head.method != "HEAD") response += body;
  if (!stream_.write_all(response)) return Next::Abort;
  return keep_alive ? Next::KeepAlive : Next::Close;
}

Next Connection::reject(Record& record, std::string reason) {
  record.error = std::move(reason);
  write_record(record);
  const std::string body = "bad request: " + record.error + "\n";
  const std::string response = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n" + upstream_fields(record.seq) +
                               "Connection: close\r\n\r\n" + body;
  stream_.write_all(response);
  return Next::Close;
}

std::string Connection::upstream_fields(std::uint64_t seq) const {
  std::string fields = "X-Upstream-Name: " + config_.name + "\r\nX-Upstream-Conn: " + std::to_string(id_) +
                       "\r\nX-Upstream-Seq: " + std::to_string(seq) + "\r\n";
  // The parser rejected CR, LF and NUL in field values, so the echo cannot inject a field.
  if (request_id_) fields += "X-Echo-Request-Id: " + *request_id_ + "\r\n";
  return fields;
}

void Connection::write_marker_record(std::uint64_t seq) const {
  append_record_line("{\"conn\":" + std::to_string(id_) + ",\"seq\":" + std::to_string(seq) +
                     ",\"marker_sent\":true}\n");
}

void Connection::write_record(const Record& record) const {
  std::string line = "{\"conn\":" + std::to_string(record.conn) + ",\"seq\":" + std::to_string(record.seq);
  if (record.head != nullptr) {
    line += ",\"method\":";
    append_json_string(line, record.head->method);
    line += ",\"target\":";
    append_json_string(line, record.head->target);
    line += ",\"version\":";
    append_json_string(line, record.head->version);
    line += ",\"headers\":";
    append_json_fields(line, record.head->headers);
  }
  if (record.body_read) {
    line += ",\"body_bytes\":" + std::to_string(record.body_bytes) + ",\"body_sha256\":";
    append_json_string(line, record.body_sha256);
    line += record.chunked ? ",\"chunked\":true" : ",\"chunked\":false";
    line += ",\"trailers\":";
    append_json_fields(line, *record.trailers);
  }
  line += tls_json_;
  if (record.early) line += ",\"early\":true";
  if (record.unanswered) line += ",\"unanswered\":true";
  if (!record.error.empty()) {
    line += ",\"error\":";
    append_json_string(line, record.error);
  }
  line += "}\n";
  append_record_line(line);
}

void Connection::append_record_line(std::string_view line) const {
  if (config_.record_fd < 0) return;
  // O_APPEND and one write() per line: lines from concurrent connections never interleave.
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t w = ::write(config_.record_fd, rest.data(), rest.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    rest.remove_prefix(static_cast<std::size_t>(w));
  }
}

}  // namespace

void serve_connection(const ServerConfig& config, int fd, std::uint64_t conn_id) {
  Connection(config, fd, conn_id).run();
}

}  // namespace phigate::test_upstream
