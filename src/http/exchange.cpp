#include "phigate/http/exchange.hpp"

#include "phigate/http/forwarding.hpp"
#include "phigate/http/serializer.hpp"

namespace phigate::http {

using core::Error;
using core::ErrorKind;
using core::Retryable;

namespace {

/// Request-smuggling defences beyond llhttp's strict parsing that need only the head. Returns why
/// the request must be refused (400, connection closed), or nullptr.
const char* head_violation(const MessageHead& head) {
  // Only HTTP/1.0 and 1.1 are spoken here; llhttp also admits 0.9 and 2.0 request lines.
  if (head.version_major != 1 || head.version_minor > 1) return "unsupported HTTP version";
  // h2c would switch protocols under our feet (RFC 9113 §3.1 removed it; proxies must not relay it).
  if (const auto* up = head.headers.find("upgrade")) {
    bool h2c = false;
    for_each_token(*up, [&](std::string_view t) { h2c = h2c || iequals(t, "h2c"); });
    if (h2c) return "Upgrade: h2c";
  }
  // Two Upgrade fields may be read as one list by us and as the other field by the upstream.
  if (head.headers.count("upgrade") > 1) return "repeated Upgrade";
  return nullptr;
}

bool is_tchar(char c) noexcept {
  // RFC 9110 §5.6.2 token characters.
  const auto u = static_cast<unsigned char>(c);
  if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// An upgrade request (Connection: upgrade + Upgrade, llhttp's verdict) is tunnelled only as
/// WebSocket opens one (RFC 6455 §4.1): HTTP/1.1 GET without a body, naming exactly one protocol,
/// and only a protocol the operator allowed. Sets `token` to that protocol; returns why the
/// request must be refused (400), or nullptr. Upgrade without Connection: upgrade is no upgrade:
/// the field is hop-by-hop and dropped when forwarding.
const char* upgrade_violation(const MessageHead& head, std::span<const std::string> allowed,
                              std::string& token) {
  token.clear();
  if (!head.upgrade) return nullptr;
  if (head.version_minor != 1) return "upgrade in HTTP/1.0";  // RFC 9110 §7.8: 1.0 has no Upgrade
  if (head.method != "GET") return "upgrade with a method other than GET";
  if (head.has_body()) return "upgrade request with a body";
  const auto* up = head.headers.find("upgrade");
  if (up == nullptr) return "upgrade without Upgrade";
  int n = 0;
  std::string_view proto;
  for_each_token(*up, [&](std::string_view t) {
    ++n;
    proto = t;
  });
  // Several protocols would let the upstream pick one we did not vet.
  if (n != 1) return "Upgrade must name one protocol";
  for (const char c : proto) {
    if (c != '/' && !is_tchar(c)) return "Upgrade protocol is not a token";
  }
  const auto name = proto.substr(0, proto.find('/'));  // "name/version": the version is the peers'
  for (const auto& a : allowed) {
    if (iequals(name, a)) {
      token.assign(proto);
      return nullptr;
    }
  }
  return "Upgrade protocol not allowed";
}

}  // namespace

std::span<const std::string> default_upgrades() noexcept {
  static const std::string kDefault[] = {"websocket"};
  return kDefault;
}

Http1Exchange::Http1Exchange(ExchangeOptions options)
    : options_(options),
      req_(Parser::Kind::Request, options.request),
      resp_(Parser::Kind::Response, options.response) {}

void Http1Exchange::set_request_limits(ParserLimits l) {
  pending_limits_ = l;
  limits_pending_ = true;
}

bool Http1Exchange::at_message_start() const noexcept {
  return req_.at_message_start();
}
bool Http1Exchange::head_started() const noexcept {
  return head_started_;
}
MessageHead& Http1Exchange::request() noexcept {
  return req_.head();
}
const MessageHead& Http1Exchange::request() const noexcept {
  return req_.head();
}
bool Http1Exchange::request_head_complete() const noexcept {
  return head_ready_;
}
bool Http1Exchange::request_complete() const noexcept {
  return head_ready_ && req_.message_complete();
}
const core::Error& Http1Exchange::error() const noexcept {
  return error_;
}

Http1Exchange::HeadStatus Http1Exchange::feed_head(const char* data, std::size_t len, std::size_t& used) {
  used = 0;
  if (request_failed_) return HeadStatus::Error;
  // The head is handed out once per request: feeding more now would swallow body bytes.
  if (head_ready_) return HeadStatus::Ready;
  // An empty feed must not let the parser report the previous message's head as this one's.
  if (len == 0) return HeadStatus::NeedMore;
  if (!head_started_ && limits_pending_ && req_.at_message_start()) {
    req_.set_limits(pending_limits_);
    limits_pending_ = false;
  }
  head_started_ = true;
  const auto st = req_.feed(data, len, used);
  if (st == ParseStatus::Error) {
    request_failed_ = true;
    fail(req_.error());
    return HeadStatus::Error;
  }
  if (!req_.head_complete()) return HeadStatus::NeedMore;
  head_ready_ = true;
  const char* why = head_violation(req_.head());
  if (why == nullptr) why = upgrade_violation(req_.head(), options_.upgrades, upgrade_token_);
  if (why != nullptr) {
    upgrade_token_.clear();
    request_failed_ = true;
    fail(Error::downstream(ErrorKind::BadRequest, why));
    return HeadStatus::Error;
  }
  return HeadStatus::Ready;
}

void Http1Exchange::append_upstream_head(std::string& out, std::string_view target, std::string_view extra) {
  const auto& head = req_.head();
  Framing framing;
  if (buffered_) {
    // The whole body was read (buffer_body): its length is known, whatever the client's framing.
    // (The caller read it to its end first: that is what buffering means.)
    if (head.chunked || head.content_length) framing = {Framing::Kind::ContentLength, body_bytes_};
    // The client's framing fields describe a framing that is not this one (the caller's hop-by-hop
    // removal takes them too; here whatever the caller did).
    req_.head().headers.remove_if([](const Header& h) {
      return iequals(h.name, "transfer-encoding") || iequals(h.name, "content-length");
    });
  } else if (head.chunked) {
    framing.kind = Framing::Kind::Chunked;
  } else if (head.content_length) {
    framing = {Framing::Kind::ContentLength, *head.content_length};
  }
  upstream_chunked_ = head.chunked && !buffered_;
  upstream_upgrade_ = upgrade_requested();
  error_page_ = false;
  if (upgrade_requested()) {
    // RFC 9110 §7.8: the upgrade is hop-by-hop, so it is asked again on the upstream hop, with
    // exactly the protocol that was vetted (whatever else the client's fields said is gone).
    auto& headers = req_.head().headers;
    headers.remove_if(
        [](const Header& h) { return iequals(h.name, "connection") || iequals(h.name, "upgrade"); });
    headers.add("Connection", "upgrade");
    headers.add("Upgrade", upgrade_token_);
  }
  append_request_head(out, head.method, target, head.headers, framing, extra);
}

bool Http1Exchange::take_continue() noexcept {
  const auto& head = req_.head();
  // RFC 9110 §10.1.1: an HTTP/1.1 client that sent Expect: 100-continue waits for 100 before its
  // body (a 1.0 client does not know 100). Once body bytes came, the client is sending anyway.
  const bool due = head_ready_ && !request_failed_ && !continue_taken_ && head.expect_continue &&
                   head.version_minor >= 1 && head.has_body() && !req_.message_complete() && !body_seen_;
  if (due) continue_taken_ = true;
  return due;
}

Http1Exchange::BodyStatus Http1Exchange::feed_body(const char* data, std::size_t len, std::size_t& used,
                                                   std::string& out, std::uint64_t body_limit) {
  used = 0;
  if (request_failed_ || body_failed_ || !head_ready_) {
    if (!head_ready_ && !request_failed_) fail(Error::internal("feed_body before the request head"));
    return BodyStatus::Error;
  }
  if (!body_done_ && len > 0 && !req_.message_complete()) {
    body_seen_ = true;
    const auto st = req_.feed(data, len, used);
    for (const auto piece : req_.body()) {
      body_bytes_ += piece.size();
      if (upstream_chunked_) append_chunk_header(out, piece.size());
      out.append(piece);
      if (upstream_chunked_) out.append(kChunkEnd);
    }
    req_.clear_body();
    if (st == ParseStatus::Error) {
      request_failed_ = true;
      fail(req_.error());
      return BodyStatus::Error;
    }
    if (body_limit != 0 && body_bytes_ > body_limit) {
      // Not request_failed_: the stream is still in step when the body was read to its end, and
      // the reply may then keep the connection (as it always did); otherwise the unread body closes it.
      body_failed_ = true;
      fail(Error::downstream(ErrorKind::BodyTooLarge));
      return BodyStatus::Error;
    }
  }
  if (!req_.message_complete()) return BodyStatus::NeedMore;
  if (!body_done_) {
    body_done_ = true;
    // A buffered body's head is built now: the trailers (chunked) must not become its fields.
    if (buffered_) req_.head().headers.truncate(head_fields_);
    // The head said chunked, so the upstream waits for the last chunk (RFC 9112 §7.1).
    if (upstream_chunked_) out.append(kLastChunk);
  }
  return BodyStatus::Done;
}

void Http1Exchange::begin_response(std::string_view extra_fields, bool close_client,
                                   const ResponseEdits* edits, std::string_view response_fields) {
  resp_.reset();
  response_edits_ = edits;
  response_fields_.assign(response_fields);
  // RFC 9110 §9.3.2: a response to HEAD has no body whatever its headers say.
  resp_.expect_no_body(req_.head().method == "HEAD");
  extra_fields_.assign(extra_fields);
  close_client_ = close_client;
  client_keep_alive_ = req_.head().keep_alive;
  response_begun_ = true;
  head_sent_ = rechunk_ = response_complete_ = response_failed_ = false;
  interim_ = 0;
  response_status_ = 0;
}

std::string_view Http1Exchange::fields_for(const HeaderList& response_headers) const {
  std::string_view extra = extra_fields_;
  // HSTS (RFC 6797) on every HTTPS response, unless the application already sets its own: then
  // only our Strict-Transport-Security line is left out (an affinity Set-Cookie after it stays).
  static constexpr std::string_view kHsts = "Strict-Transport-Security:";
  if (extra.substr(0, kHsts.size()) == kHsts &&
      response_headers.find("strict-transport-security") != nullptr) {
    const auto end = extra.find("\r\n");
    extra = end == std::string_view::npos ? std::string_view{} : extra.substr(end + 2);
  }
  return extra;
}

void Http1Exchange::emit_response_head(std::string& out) {
  const auto& req = req_.head();
  auto& rh = resp_.head();
  Framing framing;
  const bool bodyless = req.method == "HEAD" || rh.status == 204 || rh.status == 304;
  if (rh.content_length && rh.status != 204 && rh.status != 304) {
    framing = {Framing::Kind::ContentLength, *rh.content_length};
  } else if (!bodyless) {
    if (req.version_minor >= 1) {
      framing.kind = Framing::Kind::Chunked;  // RFC 9112 §7: the upstream's close becomes a last chunk
      rechunk_ = true;
    } else {
      framing.kind = Framing::Kind::UntilClose;  // HTTP/1.0 client: close delimits the body
      client_keep_alive_ = false;
    }
  }
  remove_hop_by_hop(rh.headers);
  if (response_edits_ != nullptr || !response_fields_.empty()) {
    apply_response_edits(rh.headers, response_edits_, response_fields_);
  }
  // A response that overtakes its request's body (the upstream answered early) ends the client
  // connection: the unread rest of the body would be parsed as the next request. So does any
  // answer but 101 to an upgrade: the client may already be sending the new protocol.
  const bool close = !client_keep_alive_ || close_client_ || !request_complete() || upgrade_requested();
  if (close) client_keep_alive_ = false;
  append_response_head(out, rh.status, rh.reason, req.version_minor, rh.headers, framing, close,
                       fields_for(rh.headers));
  response_status_ = rh.status;
  head_sent_ = true;
}

void Http1Exchange::emit_response_body(std::string& out) {
  for (const auto piece : resp_.body()) {
    if (rechunk_) append_chunk_header(out, piece.size());
    out.append(piece);
    if (rechunk_) out.append(kChunkEnd);
  }
  resp_.clear_body();
}

Http1Exchange::ResponseStatus Http1Exchange::switch_protocols(std::string& out) {
  auto& rh = resp_.head();
  // RFC 9110 §15.2.2: the server switches to the protocol(s) its Upgrade names; only the one that
  // was asked for and vetted may become a tunnel (a backend must not pick another protocol).
  const auto* up = rh.headers.find("upgrade");
  bool same = false;
  if (up != nullptr && rh.upgrade && rh.headers.count("upgrade") == 1) {
    int n = 0;
    for_each_token(*up, [&](std::string_view t) {
      ++n;
      same = iequals(t, upgrade_token_);
    });
    same = same && n == 1;
  }
  if (!same) {
    response_failed_ = true;
    fail(Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "101 for another protocol"));
    return ResponseStatus::Error;
  }
  remove_hop_by_hop(rh.headers);
  rh.headers.add("Connection", "upgrade");
  rh.headers.add("Upgrade", upgrade_token_);
  // No framing and no Connection: close: after this head the connection is the new protocol's.
  append_response_head(out, 101, rh.reason, 1, rh.headers, Framing{}, false, fields_for(rh.headers));
  response_status_ = 101;
  head_sent_ = true;
  response_complete_ = true;
  upgraded_ = true;
  client_keep_alive_ = false;
  return ResponseStatus::Complete;
}

Http1Exchange::ResponseStatus Http1Exchange::complete_response(std::string& out) {
  if (rechunk_) out.append(kLastChunk);
  response_complete_ = true;
  return ResponseStatus::Complete;
}

Http1Exchange::ResponseStatus Http1Exchange::feed_response(const char* data, std::size_t len,
                                                           std::size_t& used, std::string& out) {
  used = 0;
  if (response_failed_) return ResponseStatus::Error;
  if (response_complete_) return ResponseStatus::Complete;
  if (!response_begun_) {
    response_failed_ = true;
    fail(Error::internal("feed_response before begin_response"));
    return ResponseStatus::Error;
  }
  while (used < len) {
    std::size_t n = 0;
    const auto st = resp_.feed(data + used, len - used, n);
    if (st == ParseStatus::Error) {
      response_failed_ = true;
      fail(resp_.error());
      return ResponseStatus::Error;
    }
    const auto& rh = resp_.head();
    if (resp_.head_complete() && rh.status >= 100 && rh.status < 200) {
      // Interim responses: Expect is answered by us; drop them. A backend that sends them
      // without end would otherwise hold the exchange forever. A 101 ends HTTP on this
      // connection: only an upgrade request may get one (else the bytes after it would be
      // relayed unparsed as an answer nobody asked for); `used` stops right after its head.
      used += n;
      resp_.clear_body();
      if (rh.status == 101) {
        // Only a head that asked for the upgrade may be answered so: never an error page's GET.
        if (upstream_upgrade_ && upgrade_requested() && request_complete()) return switch_protocols(out);
        response_failed_ = true;
        fail(
            Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "101 without an upgrade request"));
        return ResponseStatus::Error;
      }
      if (error_page_ && rh.status != 100) {
        response_failed_ = true;
        fail(Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "1xx from the error backend"));
        return ResponseStatus::Error;
      }
      if (++interim_ > options_.max_interim) {
        response_failed_ = true;
        fail(Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "too many 1xx responses"));
        return ResponseStatus::Error;
      }
      continue;
    }
    if (resp_.head_complete() && !head_sent_) emit_response_head(out);
    emit_response_body(out);
    used += n;
    // `used` stops at the end of the response: what follows is not part of it (unsolicited).
    if (resp_.message_complete()) return complete_response(out);
    if (st == ParseStatus::NeedMore) break;
  }
  return ResponseStatus::NeedMore;
}

Http1Exchange::ResponseStatus Http1Exchange::upstream_eof(std::string& out) {
  if (response_failed_) return ResponseStatus::Error;
  if (response_complete_) return ResponseStatus::Complete;
  // RFC 9112 §6.3 rule 8: without Content-Length or chunked framing, the close ends the body.
  if (response_begun_ && head_sent_ && resp_.body_until_eof()) {
    if (resp_.finish() != ParseStatus::Error && resp_.message_complete()) {
      emit_response_body(out);
      return complete_response(out);
    }
  }
  response_failed_ = true;
  fail(Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "eof"));
  return ResponseStatus::Error;
}

bool Http1Exchange::upstream_reusable(bool leftover) const noexcept {
  // Any byte after the response is unexplained and must never be read as another client's answer.
  // After HEAD, and after a 204/304 that announced content, content the upstream may still write
  // was never read: it could arrive after the next acquire's peek (response desync).
  return response_complete_ && resp_.message_complete() && resp_.should_keep_alive() && request_complete() &&
         !upgrade_requested() && !upgraded_ && !leftover && req_.head().method != "HEAD" &&
         !resp_.head().framing_suspect;
}

bool Http1Exchange::client_keep_alive() const noexcept {
  // An unread request body would be parsed as the next request.
  return client_keep_alive_ && !close_client_ && !request_failed_ && request_complete() &&
         !upgrade_requested();
}

Http1Exchange::Reply Http1Exchange::append_local_reply(std::string& out, int status, std::string_view body,
                                                       std::string_view location,
                                                       std::string_view extra_fields, bool must_close,
                                                       bool close_client) {
  const auto& head = req_.head();
  // After a malformed request, or with its body unread, the byte stream cannot be trusted to
  // re-synchronise on the next request: close.
  // After an upgrade request the client may already be sending the new protocol's bytes.
  const bool close = must_close || close_client || request_failed_ || !head_ready_ ||
                     !req_.message_complete() || !head.keep_alive || upgrade_requested();
  http::append_local_reply(out, status, head_ready_ ? head.version_minor : 1, close, body, location,
                           head_ready_ && head.method == "HEAD", extra_fields);
  client_keep_alive_ = !close;
  if (close) close_client_ = true;
  // A client still sending a body we refused would get a reset on its next write, and a reset can
  // discard our reply before it reads it: the caller drains for a moment first (lingering close).
  return {!close, close && head_ready_ && !req_.message_complete()};
}

void Http1Exchange::next_request() noexcept {
  head_started_ = head_ready_ = false;
  upstream_chunked_ = buffered_ = body_seen_ = body_done_ = body_failed_ = continue_taken_ = false;
  body_bytes_ = 0;
  upgrade_token_.clear();
  upstream_upgrade_ = error_page_ = false;
  response_begun_ = close_client_ = head_sent_ = rechunk_ = response_complete_ = response_failed_ = false;
  client_keep_alive_ = true;
  interim_ = 0;
  response_status_ = 0;
  if (!request_failed_) error_ = {};
}

}  // namespace phigate::http
