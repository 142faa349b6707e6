#include "phigate/http/parser.hpp"

namespace phigate::http {

using core::ErrorKind;

void Parser::reset() {
  llhttp_init(&parser_, kind_ == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
  head_.clear();
  body_.clear();
  error_ = {};
  header_bytes_ = 0;
  in_value_ = head_complete_ = message_complete_ = started_ = paused_ = no_body_ = until_eof_ = failed_ =
      upgraded_ = false;
}

Parser::Parser(Kind kind, ParserLimits limits) : kind_(kind), limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Parser::on_message_begin;
  settings_.on_url = &Parser::on_url;
  settings_.on_status = &Parser::on_status;
  settings_.on_method = &Parser::on_method;
  settings_.on_header_field = &Parser::on_header_field;
  settings_.on_header_value = &Parser::on_header_value;
  settings_.on_headers_complete = &Parser::on_headers_complete;
  settings_.on_body = &Parser::on_body;
  settings_.on_message_complete = &Parser::on_message_complete;
  llhttp_init(&parser_, kind == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
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

int Parser::on_message_begin(llhttp_t* p) {
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

int Parser::on_method(llhttp_t* p, const char* at, std::size_t len) {
  self(p).head_.method.append(at, len);
  return 0;
}

int Parser::on_url(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (s.head_.target.size() + len > s.limits_.request_line_bytes) {
    return s.fail(ErrorKind::UriTooLong, "request target too long");
  }
  s.head_.target.append(at, len);
  return 0;
}

int Parser::on_status(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (s.head_.reason.size() + len > 1024) return s.fail(ErrorKind::BadRequest, "reason phrase too long");
  s.head_.reason.append(at, len);
  return 0;
}

int Parser::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
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
  return 0;
}

int Parser::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto& s = self(p);
  s.header_bytes_ += len;
  if (s.header_bytes_ > s.limits_.header_bytes) return s.fail(ErrorKind::HeaderTooLarge, "headers too large");
  s.in_value_ = true;
  s.head_.headers.back().value.append(at, len);
  return 0;
}

int Parser::on_headers_complete(llhttp_t* p) {
  auto& s = self(p);
  auto& h = s.head_;
  h.version_major = p->http_major;
  h.version_minor = p->http_minor;
  h.chunked = (p->flags & F_CHUNKED) != 0;
  if ((p->flags & F_CONTENT_LENGTH) != 0 && !h.chunked) h.content_length = p->content_length;
  h.keep_alive = llhttp_should_keep_alive(p) != 0;
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty (a 1.0
  // hop would delimit the body differently): refuse it whatever Content-Length says.
  if ((p->flags & F_TRANSFER_ENCODING) != 0 && h.version_major == 1 && h.version_minor == 0) {
    return s.fail(ErrorKind::BadRequest, "Transfer-Encoding in HTTP/1.0");
  }
  if (s.kind_ == Kind::Request) {
    if (p->method == HTTP_CONNECT) return s.fail(ErrorKind::BadRequest, "CONNECT is not supported");
    // An upgrade (Connection: upgrade + Upgrade) turns the bytes after this message into a
    // tunnel that is never parsed again. Until tunnels are built (with the 101 check), such a
    // request is refused: forwarding it as an ordinary request would leave its trailing bytes to
    // be read as requests nobody vetted (upgrade smuggling).
    if (p->upgrade != 0) return s.fail(ErrorKind::BadRequest, "Upgrade is not supported");
    if (const auto* e = h.headers.find("expect")) {
      if (!iequals(*e, "100-continue")) return s.fail(ErrorKind::BadRequest, "unsupported Expect");
      h.expect_continue = true;
    }
  } else {
    h.status = p->status_code;
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
  if (bodyless_status) s.until_eof_ = false;
  if (bodyless_status || (!h.has_body() && !s.until_eof_)) return 0;
  return HPE_PAUSED;
}

int Parser::on_body(llhttp_t* p, const char* at, std::size_t len) {
  self(p).body_.emplace_back(at, len);
  return 0;
}

int Parser::on_message_complete(llhttp_t* p) {
  auto& s = self(p);
  s.message_complete_ = true;
  s.until_eof_ = false;
  s.started_ = false;
  // After a 101 (or any upgrade llhttp recognised) the bytes that follow are not HTTP.
  if (p->upgrade != 0) s.upgraded_ = true;
  return HPE_PAUSED;
}

bool Parser::should_keep_alive() const noexcept {
  return llhttp_should_keep_alive(&parser_) != 0;
}

ParseStatus Parser::translate(llhttp_errno_t err, const char* data, std::size_t len, std::size_t& consumed) {
  if (err == HPE_OK) {
    consumed = len;
    return ParseStatus::NeedMore;
  }
  if (err == HPE_PAUSED_UPGRADE) {
    // Only a 101 response gets here (upgrade requests fail in on_headers_complete). What follows
    // is another protocol: no later feed() may parse it as HTTP.
    upgraded_ = true;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&parser_);
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
    llhttp_resume(&parser_);
  }
  // A head is handed out once: after a message completed, head_complete() and
  // message_complete() describe the next message only, and turn true only from new bytes.
  if (message_complete_ && len > 0) message_complete_ = head_complete_ = false;
  return translate(llhttp_execute(&parser_, data, len), data, len, consumed);
}

ParseStatus Parser::finish() {
  if (failed_) return ParseStatus::Error;
  if (paused_) {
    paused_ = false;
    llhttp_resume(&parser_);
  }
  std::size_t unused = 0;
  const auto err = llhttp_finish(&parser_);
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
