#include "phigate/http/parser.hpp"

#include <llhttp.h>

#include <new>

namespace phigate::http {

using core::ErrorKind;

struct Parser::Callbacks {
  static_assert(sizeof(llhttp_t) <= kStateBytes, "llhttp_t grew: raise Parser::kStateBytes");
  static_assert(alignof(llhttp_t) <= 8, "llhttp_t alignment: raise Parser::state_'s alignas");

  static llhttp_t* state(Parser& p) noexcept { return std::launder(reinterpret_cast<llhttp_t*>(p.state_)); }
  static const llhttp_t* state(const Parser& p) noexcept {
    return std::launder(reinterpret_cast<const llhttp_t*>(p.state_));
  }
  static Parser& self(llhttp_t* p) noexcept { return *static_cast<Parser*>(p->data); }
  static void init(Parser& p) noexcept {
    llhttp_t* st = new (p.state_) llhttp_t{};
    llhttp_init(st, p.kind_ == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
    st->data = &p;
  }
  /// One table for every parser: the callbacks find their Parser through llhttp_t::data.
  static const llhttp_settings_t& settings() noexcept {
    static const llhttp_settings_t kSettings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = &on_message_begin;
      s.on_url = &on_url;
      s.on_status = &on_status;
      s.on_method = &on_method;
      s.on_header_field = &on_header_field;
      s.on_header_value = &on_header_value;
      s.on_headers_complete = &on_headers_complete;
      s.on_body = &on_body;
      s.on_message_complete = &on_message_complete;
      return s;
    }();
    return kSettings;
  }

  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, std::size_t len);
  static int on_status(llhttp_t* p, const char* at, std::size_t len);
  static int on_method(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);
};

void Parser::reset() {
  Callbacks::init(*this);
  head_.clear();
  body_.clear();
  error_ = {};
  header_bytes_ = 0;
  in_value_ = head_complete_ = message_complete_ = started_ = paused_ = no_body_ = until_eof_ = failed_ =
      upgraded_ = false;
}

Parser::Parser(Kind kind, ParserLimits limits) : kind_(kind), limits_(limits) {
  Callbacks::init(*this);
}

int Parser::fail(ErrorKind kind, const char* why) {
  error_ = core::Error::downstream(kind, why);
  if (kind_ == Kind::Response) {
    error_.source = core::ErrorSource::Upstream;
    error_.kind = ErrorKind::UpstreamBadResponse;
  }
  failed_ = true;
  return HPE_USER;
}

int Parser::Callbacks::on_message_begin(llhttp_t* p) {
  auto& s = self(p);
  s.head_.clear();
  s.body_.clear();
  s.header_bytes_ = 0;
  s.in_value_ = false;
  s.head_complete_ = false;
  s.message_complete_ = false;
  s.until_eof_ = false;
  s.started_ = true;
  return 0;
}

int Parser::Callbacks::on_method(llhttp_t* p, const char* at, std::size_t len) {
  self(p).head_.method.append(at, len);
  return 0;
}

int Parser::Callbacks::on_url(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (s.head_.target.size() + len > s.limits_.request_line_bytes) {
    return s.fail(ErrorKind::UriTooLong, "request target too long");
  }
  s.head_.target.append(at, len);
  return 0;
}

int Parser::Callbacks::on_status(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (s.head_.reason.size() + len > 1024) return s.fail(ErrorKind::BadRequest, "reason phrase too long");
  s.head_.reason.append(at, len);
  return 0;
}

int Parser::Callbacks::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  s.header_bytes_ += len;
  if (s.header_bytes_ > s.limits_.header_bytes) return s.fail(ErrorKind::HeaderTooLarge, "headers too large");
  // llhttp may deliver one name in several pieces (split across reads): a piece after a value
  // starts a new field.
  if (s.in_value_ || s.head_.headers.empty()) {
    if (s.head_.headers.size() >= s.limits_.header_count) {
      return s.fail(ErrorKind::HeaderTooLarge, "too many header fields");
    }
    s.head_.headers.add(std::string_view(at, len), {});
    s.in_value_ = false;
  } else {
    s.head_.headers.back().name.append(at, len);
  }
  if (s.lower_names_) {
    std::string& name = s.head_.headers.back().name;
    core::to_lower_in_place(name.data() + (name.size() - len), len);
  }
  return 0;
}

int Parser::Callbacks::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  s.header_bytes_ += len;
  if (s.header_bytes_ > s.limits_.header_bytes) return s.fail(ErrorKind::HeaderTooLarge, "headers too large");
  s.in_value_ = true;
  s.head_.headers.back().value.append(at, len);
  return 0;
}

int Parser::Callbacks::on_headers_complete(llhttp_t* p) {
  auto& s = self(p);
  auto& h = s.head_;
  h.version_major = p->http_major;
  h.version_minor = p->http_minor;
  h.chunked = (p->flags & F_CHUNKED) != 0;
  if ((p->flags & F_CONTENT_LENGTH) != 0 && !h.chunked) h.content_length = p->content_length;
  h.keep_alive = llhttp_should_keep_alive(p) != 0;
  // Only HTTP/1.0 and 1.1 are spoken here; llhttp also admits 0.9 and 2.0 lines (RFC 9112 §2.3).
  if (h.version_major != 1 || h.version_minor > 1)
    return s.fail(ErrorKind::BadRequest, "unsupported HTTP version");
  // RFC 9110 §15: a status code is three digits from 100 to 599.
  if (s.kind_ == Kind::Response && (p->status_code < 100 || p->status_code > 599)) {
    return s.fail(ErrorKind::UpstreamBadResponse, "status code out of range");
  }
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty (a 1.0
  // hop would delimit the body differently): refuse it whatever Content-Length says.
  if ((p->flags & F_TRANSFER_ENCODING) != 0 && h.version_major == 1 && h.version_minor == 0) {
    return s.fail(ErrorKind::BadRequest, "Transfer-Encoding in HTTP/1.0");
  }
  if (s.kind_ == Kind::Request) {
    if (p->method == HTTP_CONNECT) return s.fail(ErrorKind::BadRequest, "CONNECT is not supported");
    // An upgrade (Connection: upgrade + Upgrade) turns the bytes after this message into a
    // tunnel that is never parsed again (on_message_complete). llhttp would first read a body
    // and then stop: an upgrade request with a body is refused, so that its trailing bytes can
    // never be forwarded as requests nobody vetted (upgrade smuggling). Whether the token is
    // allowed is the exchange codec's decision (RFC 6455 §4.1: GET, no body).
    if (p->upgrade != 0) {
      if ((p->flags & (F_CHUNKED | F_TRANSFER_ENCODING)) != 0 ||
          ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length != 0)) {
        return s.fail(ErrorKind::BadRequest, "upgrade request with a body");
      }
      h.upgrade = true;
    }
    if (const auto* e = h.headers.find("expect")) {
      if (!iequals(*e, "100-continue")) return s.fail(ErrorKind::BadRequest, "unsupported Expect");
      h.expect_continue = true;
    }
  } else {
    h.status = p->status_code;
    h.upgrade = p->upgrade != 0;  // only a 101 with Connection: upgrade + Upgrade
    s.until_eof_ = !h.chunked && !h.content_length;
  }
  s.head_complete_ = true;
  // RFC 9110 §9.3.2: a response to HEAD has no body whatever its headers say. llhttp then goes
  // straight to on_message_complete, which pauses.
  if (s.kind_ == Kind::Response && s.no_body_) {
    s.until_eof_ = false;
    return 1;
  }
  // Without a body the message completes right away: let on_message_complete pause instead, so
  // the caller sees head and end together. 1xx/204/304 responses never have one (llhttp knows).
  const bool bodyless_status =
      s.kind_ == Kind::Response && (h.status < 200 || h.status == 204 || h.status == 304);
  if (bodyless_status) {
    const bool framed = (p->flags & (F_CONTENT_LENGTH | F_CHUNKED | F_TRANSFER_ENCODING)) != 0;
    // RFC 9110 §15.2: a 1xx has no content. llhttp ignores its framing fields and parses what
    // follows as the next response, so a 103 "body" could be a forged final response: refuse.
    if (h.status < 200 && framed) return s.fail(ErrorKind::UpstreamBadResponse, "1xx with framing fields");
    // RFC 9110 §15.3.5 / §15.4.5: 204 never has content and 304 may only repeat Content-Length.
    // Content announced here is not read, so whatever follows is unexplained: do not reuse.
    const bool te = (p->flags & (F_CHUNKED | F_TRANSFER_ENCODING)) != 0;
    if (te || (h.status == 204 && (p->flags & F_CONTENT_LENGTH) != 0 && p->content_length != 0)) {
      h.framing_suspect = true;
    }
  }
  if (bodyless_status) s.until_eof_ = false;
  if (bodyless_status || (!h.has_body() && !s.until_eof_)) return 0;
  return HPE_PAUSED;
}

int Parser::Callbacks::on_body(llhttp_t* p, const char* at, std::size_t len) {
  self(p).body_.emplace_back(at, len);
  return 0;
}

int Parser::Callbacks::on_message_complete(llhttp_t* p) {
  auto& s = self(p);
  s.message_complete_ = true;
  s.until_eof_ = false;
  s.started_ = false;
  // After a 101 (or any upgrade llhttp recognised) the bytes that follow are not HTTP.
  if (p->upgrade != 0) s.upgraded_ = true;
  return HPE_PAUSED;
}

bool Parser::should_keep_alive() const noexcept {
  return llhttp_should_keep_alive(Callbacks::state(*this)) != 0;
}

ParseStatus Parser::translate(int llhttp_errno, const char* data, std::size_t len, std::size_t& consumed) {
  const auto err = static_cast<llhttp_errno_t>(llhttp_errno);
  if (err == HPE_OK) {
    consumed = len;
    return ParseStatus::NeedMore;
  }
  if (err == HPE_PAUSED_UPGRADE) {
    // An upgrade request or a 101 response: what follows is another protocol, and no later
    // feed() may parse it as HTTP.
    upgraded_ = true;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(Callbacks::state(*this));
    consumed = pos ? static_cast<std::size_t>(pos - data) : len;
    paused_ = true;
    return ParseStatus::Paused;
  }
  consumed = 0;
  if (!failed_) {
    failed_ = true;
    const bool req = kind_ == Kind::Request;
    error_ = req ? core::Error::downstream(ErrorKind::BadRequest, llhttp_errno_name(err))
                 : core::Error::upstream(ErrorKind::UpstreamBadResponse, core::Retryable::No,
                                         llhttp_errno_name(err));
  }
  return ParseStatus::Error;
}

ParseStatus Parser::feed(const char* data, std::size_t len, std::size_t& consumed) {
  if (failed_) {
    consumed = 0;
    return ParseStatus::Error;
  }
  if (upgraded_) {
    // llhttp would answer every later call with HPE_PAUSED_UPGRADE at offset 0, and the caller
    // would see the previous message's head again as if it were new.
    consumed = 0;
    failed_ = true;
    error_ = kind_ == Kind::Request ? core::Error::downstream(ErrorKind::BadRequest, "bytes after an upgrade")
                                    : core::Error::upstream(ErrorKind::UpstreamBadResponse,
                                                            core::Retryable::No, "bytes after 101");
    return ParseStatus::Error;
  }
  if (paused_) {
    paused_ = false;
    llhttp_resume(Callbacks::state(*this));
  }
  // A head is handed out once: after a message completed, head_complete() and
  // message_complete() describe the next message only, and turn true only from new bytes.
  if (message_complete_ && len > 0) {
    message_complete_ = head_complete_ = false;
    head_.clear();  // a failure before the next message begins must not report the last one's head
  }
  return translate(llhttp_execute(Callbacks::state(*this), data, len), data, len, consumed);
}

ParseStatus Parser::finish() {
  if (failed_) return ParseStatus::Error;
  std::size_t unused = 0;
  if (paused_ && !message_complete_) {
    // Paused inside llhttp's headers-complete callback: llhttp has not yet chosen the body's
    // framing, and llhttp_finish there reports an invalid EOF state, which read an empty body
    // delimited by the close as a truncation (found by fuzz_exchange). An empty feed lets llhttp
    // run up to where it needs input.
    static constexpr char kNone[1] = {};
    if (feed(kNone, 0, unused) == ParseStatus::Error) return ParseStatus::Error;
  }
  if (paused_) {
    paused_ = false;
    llhttp_resume(Callbacks::state(*this));
  }
  const auto err = llhttp_finish(Callbacks::state(*this));
  // llhttp reports EOF inside a length-delimited message as HPE_INVALID_EOF_STATE: that is a
  // truncation (the peer went away), not malformed syntax.
  if ((err == HPE_OK && !message_complete_ && started_) || err == HPE_INVALID_EOF_STATE) {
    // EOF in the middle of a message that needed a length.
    failed_ = true;
    error_ = kind_ == Kind::Request ? core::Error::downstream(ErrorKind::ClientClosed, "closed mid-request")
                                    : core::Error::upstream(ErrorKind::UpstreamReset, core::Retryable::No,
                                                            "closed mid-response");
    return ParseStatus::Error;
  }
  return translate(err, nullptr, 0, unused);
}

}  // namespace phigate::http
