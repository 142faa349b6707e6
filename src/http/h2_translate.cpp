#include "phigate/http/h2_translate.hpp"

namespace phigate::http {

using core::Error;
using core::ErrorKind;

namespace {

/// Fields that describe one hop's connection (RFC 9110 §7.6.1) or that HTTP/2 forbids
/// (RFC 9113 §8.2.2): never relayed between an HTTP/1.1 upstream and an HTTP/2 client.
bool connection_specific(std::string_view n) noexcept {
  return iequals(n, "connection") || iequals(n, "keep-alive") || iequals(n, "proxy-connection") ||
         iequals(n, "transfer-encoding") || iequals(n, "upgrade") || iequals(n, "te") ||
         iequals(n, "trailer");
}

/// A field value without the trailing whitespace llhttp keeps (RFC 9112 §5: OWS around a value is
/// not part of it; RFC 9113 §8.2.1: an HTTP/2 value must not end with it). Leading OWS llhttp skips.
std::string_view trim_trailing_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

Framing h1_request_framing(const MessageHead& head, bool end_stream, std::uint64_t body_bytes) noexcept {
  if (head.content_length) return {Framing::Kind::ContentLength, *head.content_length};
  if (end_stream) {
    // The whole request is here: its length is known, and many backends refuse chunked requests.
    if (body_bytes == 0) return {};
    return {Framing::Kind::ContentLength, body_bytes};
  }
  return {Framing::Kind::Chunked, 0};
}

void join_cookie_fields(HeaderList& headers) {
  if (headers.count("cookie") < 2) return;
  std::string joined;
  for (const auto& h : headers) {
    if (!iequals(h.name, "cookie")) continue;
    if (!joined.empty()) joined += "; ";
    joined += h.value;
  }
  headers.set("cookie", joined);
}

void append_h1_request_head(std::string& out, const MessageHead& head, std::string_view target,
                            Framing framing, std::string_view extra) {
  append_request_head(out, head.method, target, head.headers, framing, extra);
}

void append_h1_body(std::string& out, std::string_view bytes, Framing framing) {
  if (bytes.empty()) return;  // an empty chunk would end a chunked body
  if (framing.kind == Framing::Kind::Chunked) {
    append_chunk_header(out, bytes.size());
    out += bytes;
    out += kChunkEnd;
    return;
  }
  out += bytes;
}

bool trailer_allowed(std::string_view n) noexcept {
  // RFC 9110 §6.5.1: a sender must not put in a trailer what framing, routing, request modifiers,
  // authentication or response control need; a recipient must not merge those. Dropped here.
  return !(connection_specific(n) || iequals(n, "content-length") || iequals(n, "host") ||
           iequals(n, "content-type") || iequals(n, "content-encoding") || iequals(n, "content-range") ||
           iequals(n, "authorization") || iequals(n, "proxy-authorization") || iequals(n, "cookie") ||
           iequals(n, "set-cookie") || iequals(n, "expect") || iequals(n, "max-forwards") ||
           iequals(n, "cache-control") || iequals(n, "location") || iequals(n, "www-authenticate") ||
           (n.size() >= 11 && iequals(n.substr(0, 11), "ssl-client-")) ||
           (n.size() >= 11 && iequals(n.substr(0, 11), "x-forwarded")) || iequals(n, "forwarded") ||
           iequals(n, "x-real-ip") || iequals(n, "x-request-id") || n.empty() || n.front() == ':');
}

bool request_trailer_allowed(std::string_view n) noexcept {
  if (!trailer_allowed(n)) return false;
  // An allowlist of characters, as set_forwarding_headers applies to the head: CGI, PHP-FPM and
  // WSGI map `_` (and other non-alphanumerics) to `-`, so `ssl_client_verify` or `x_forwarded_for`
  // in a trailer would reach the application as the field phigate sets or strips.
  for (const char c : n) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  // The path-override fields forwarding.cpp drops from the head (IIS URL Rewrite, Symfony, Zend
  // read them as the path actually requested), and every other x-original-* field.
  return !(iequals(n, "x-rewrite-url") || (n.size() >= 11 && iequals(n.substr(0, 11), "x-original-")));
}

void append_h1_body_end(std::string& out, const HeaderList* trailers, Framing framing) {
  if (framing.kind != Framing::Kind::Chunked) return;
  out += "0\r\n";
  if (trailers != nullptr) {
    for (const auto& h : *trailers) {
      if (!request_trailer_allowed(h.name)) continue;
      out += h.name;
      out += ": ";
      out += h.value;
      out += "\r\n";
    }
  }
  out += "\r\n";
}

namespace {

template <class F>
void for_each_raw_field(std::string_view raw, F&& f) {
  while (!raw.empty()) {
    const auto eol = raw.find("\r\n");
    const auto line = raw.substr(0, eol);
    raw = eol == std::string_view::npos ? std::string_view{} : raw.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    f(line.substr(0, colon), value);
  }
}

}  // namespace

void add_raw_fields(HeaderList& out, std::string_view raw) {
  for_each_raw_field(raw, [&](std::string_view name, std::string_view value) { out.add(name, value); });
}

void add_raw_fields(std::vector<FieldRef>& out, std::string_view raw) {
  for_each_raw_field(raw, [&](std::string_view name, std::string_view value) {
    out.push_back({name, value});
  });
}

H1ResponseReader::H1ResponseReader(ParserLimits limits, bool head_request)
    : parser_(Parser::Kind::Response, limits), head_request_(head_request) {
  parser_.expect_no_body(head_request);
  parser_.lowercase_names(true);  // the head only goes on as HTTP/2 fields
}

H1ResponseReader::Status H1ResponseReader::fail(Error e) {
  failed_ = true;
  e.source = core::ErrorSource::Upstream;
  if (e.kind != ErrorKind::UpstreamReset) e.kind = ErrorKind::UpstreamBadResponse;
  error_ = std::move(e);
  return Status::Error;
}

void H1ResponseReader::take_body(std::string& body) {
  for (const auto piece : parser_.body()) body.append(piece);
  parser_.clear_body();
}

H1ResponseReader::Status H1ResponseReader::feed(const char* data, std::size_t len, std::size_t& used,
                                                std::string& body) {
  used = 0;
  if (failed_) return Status::Error;
  if (complete_) return Status::Complete;
  while (used < len) {
    std::size_t n = 0;
    const auto st = parser_.feed(data + used, len - used, n);
    if (st == ParseStatus::Error) return fail(parser_.error());
    used += n;
    const auto& h = parser_.head();
    if (!head_ready_ && parser_.head_complete() && h.status < 200) {
      // Interim responses: the client's Expect was answered by us (the field is not forwarded),
      // and 103 hints are dropped. A 101 was never asked for (no upgrade over HTTP/2).
      parser_.clear_body();
      if (h.status == 101 && accept_switch_) {
        // The parser paused at the 101's head: what follows is the tunnel's, not ours to parse.
        head_ready_ = complete_ = true;
        head_fields_ = h.headers.size();
        return Status::Complete;
      }
      if (h.status == 101)
        return fail(Error::upstream(ErrorKind::UpstreamBadResponse, core::Retryable::No,
                                    "101 without an upgrade request"));
      if (error_page_ && h.status != 100)
        return fail(Error::upstream(ErrorKind::UpstreamBadResponse, core::Retryable::No,
                                    "1xx from the error backend"));
      if (++interim_ > kMaxInterim) {
        return fail(
            Error::upstream(ErrorKind::UpstreamBadResponse, core::Retryable::No, "too many 1xx responses"));
      }
      continue;
    }
    if (!head_ready_ && parser_.head_complete()) {
      head_ready_ = true;
      head_fields_ = h.headers.size();
    }
    take_body(body);
    if (parser_.message_complete()) {
      complete_ = true;
      // llhttp reports chunked trailer fields like header fields: the parser appended them.
      std::size_t i = 0;
      for (const auto& f : h.headers) {
        if (i++ < head_fields_) continue;
        if (trailer_allowed(f.name)) trailers_.add(f.name, trim_trailing_ows(f.value));
      }
      return Status::Complete;
    }
    if (st == ParseStatus::NeedMore) break;
  }
  return Status::NeedMore;
}

H1ResponseReader::Status H1ResponseReader::eof(std::string& body) {
  if (failed_) return Status::Error;
  if (complete_) return Status::Complete;
  if (head_ready_ && parser_.body_until_eof()) {
    if (parser_.finish() != ParseStatus::Error && parser_.message_complete()) {
      take_body(body);
      complete_ = true;
      return Status::Complete;
    }
  }
  return fail(Error::upstream(ErrorKind::UpstreamReset, core::Retryable::No, "eof"));
}

void H1ResponseReader::h2_fields(HeaderList& out) const {
  std::vector<FieldRef> refs;
  h2_fields(refs);
  for (const auto& f : refs) out.add(f.name, f.value);
}

void H1ResponseReader::h2_fields(std::vector<FieldRef>& out) const {
  const auto& h = parser_.head();
  // Content-Length describes the body only when it framed it; after HEAD or for 304 it is the
  // representation's, which HTTP/2 allows (RFC 9110 §8.6) and curl checks against DATA: keep it
  // only when it frames a body we relay or the response has none by definition.
  const bool keep_length = h.status != 204 && (h.content_length || head_request_ || h.status == 304);
  const std::size_t first = out.size();
  bool names_more = false;  // a Connection option naming a field kept so far
  std::size_t i = 0;
  // The parser lower-cases names (the constructor's lowercase_names): exact comparisons suffice.
  for (const auto& f : h.headers) {
    if (i++ >= head_fields_) break;  // trailers are not head fields
    const std::string_view n(f.name);
    if (connection_specific(n)) {
      // Connection's options that name fields dropped anyway (keep-alive, upgrade, ...) need no
      // second pass: nginx says "Connection: keep-alive" on every response.
      if (n == "connection") {
        for_each_token(f.value,
                       [&](std::string_view tok) { names_more = names_more || !connection_specific(tok); });
      }
      continue;
    }
    if (!keep_length && n == "content-length") continue;
    out.push_back({n, trim_trailing_ows(f.value)});
  }
  if (!names_more) return;
  // Other fields the Connection field names are this hop's too (RFC 9110 §7.6.1): rare, a second
  // pass.
  std::string named;
  i = 0;
  for (const auto& f : h.headers) {
    if (i++ >= head_fields_) break;
    if (f.name != "connection") continue;
    if (!named.empty()) named += ',';
    named += f.value;
  }
  std::size_t kept = first;
  for (std::size_t j = first; j < out.size(); ++j) {
    bool listed = false;
    for_each_token(named, [&](std::string_view tok) { listed = listed || iequals(tok, out[j].name); });
    if (!listed) out[kept++] = out[j];
  }
  out.resize(kept);
}

bool H1ResponseReader::bodyless() const noexcept {
  const auto& h = parser_.head();
  return head_request_ || h.status == 204 || h.status == 304 ||
         (complete_ && !h.chunked && h.content_length && *h.content_length == 0);
}

bool H1ResponseReader::reusable(bool leftover) const noexcept {
  // Any byte after the response is unexplained and must never be read as another request's
  // answer; after HEAD or a 204/304 announcing content, that content may still come.
  const auto& h = parser_.head();
  return complete_ && !failed_ && parser_.should_keep_alive() && !leftover && !head_request_ &&
         !h.framing_suspect && h.status != 101;  // after a 101 the connection is the new protocol's
}

const char* websocket_switch_violation(const MessageHead& response, std::string_view protocol,
                                       std::string_view accept) {
  if (response.status != 101) return "not 101";
  bool conn_upgrade = false;
  for (const auto& f : response.headers) {
    if (!iequals(f.name, "connection")) continue;
    for_each_token(f.value,
                   [&](std::string_view t) { conn_upgrade = conn_upgrade || iequals(t, "upgrade"); });
  }
  if (!conn_upgrade) return "101 without Connection: upgrade";
  const auto* up = response.headers.find("upgrade");
  if (up == nullptr || response.headers.count("upgrade") != 1) return "101 without one Upgrade";
  int n = 0;
  bool same = false;
  for_each_token(*up, [&](std::string_view t) {
    ++n;
    same = iequals(t, protocol);
  });
  if (n != 1 || !same) return "101 for another protocol";
  const auto* acc = response.headers.find("sec-websocket-accept");
  // The value without the trailing whitespace llhttp keeps (OWS is not part of it, RFC 9110 §5.5).
  if (acc == nullptr || response.headers.count("sec-websocket-accept") != 1 ||
      trim_trailing_ows(*acc) != accept)
    return "101 with a wrong Sec-WebSocket-Accept";
  return nullptr;
}

}  // namespace phigate::http
