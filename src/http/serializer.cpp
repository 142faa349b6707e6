#include "phigate/http/serializer.hpp"

#include <charconv>
#include <cstring>

#include "phigate/http/message.hpp"

namespace phigate::http {

namespace {

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

std::size_t fields_bytes(const HeaderList& headers) noexcept {
  std::size_t bytes = 0;
  for (const auto& h : headers) bytes += h.name.size() + h.value.size() + 4;
  return bytes;
}

// Room for a head's fixed parts beyond its fields: the framing field and the blank line.
constexpr std::size_t kHeadSlack = 64;

void append_fields(std::string& out, const HeaderList& headers, Framing framing, std::size_t bytes) {
  // One resize and a copy per piece: four appends per field, each checking capacity, were a
  // visible share of a proxied request (docs/perf-h2-many-streams.md, round 4).
  std::size_t at = out.size();
  out.resize(at + bytes);
  char* p = out.data();
  for (const auto& h : headers) {
    std::memcpy(p + at, h.name.data(), h.name.size());
    at += h.name.size();
    std::memcpy(p + at, ": ", 2);
    at += 2;
    std::memcpy(p + at, h.value.data(), h.value.size());
    at += h.value.size();
    std::memcpy(p + at, "\r\n", 2);
    at += 2;
  }
  if (framing.kind == Framing::Kind::ContentLength) {
    out += "Content-Length: ";
    append_number(out, framing.length);
    out += "\r\n";
  } else if (framing.kind == Framing::Kind::Chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  }
}

}  // namespace

void append_request_head(std::string& out, std::string_view method, std::string_view target,
                         const HeaderList& headers, Framing framing, std::string_view extra) {
  // One allocation for the whole head (growing by appends took three and two copies; round 7).
  const std::size_t bytes = fields_bytes(headers);
  out.reserve(out.size() + method.size() + target.size() + 12 + bytes + extra.size() + kHeadSlack);
  out += method;
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\n";
  append_fields(out, headers, framing, bytes);
  out += extra;
  out += "\r\n";
}

void append_response_head(std::string& out, int status, std::string_view reason, int minor,
                          const HeaderList& headers, Framing framing, bool close,
                          std::string_view extra_fields) {
  out += minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(out, static_cast<std::uint64_t>(status));
  out += ' ';
  out += reason.empty() ? std::string_view(reason_phrase(status)) : reason;
  out += "\r\n";
  append_fields(out, headers, framing, fields_bytes(headers));
  out += extra_fields;
  if (close) {
    out += "Connection: close\r\n";
  } else if (minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

void append_local_reply(std::string& out, int status, int minor, bool close, std::string_view body,
                        std::string_view location, bool head_only, std::string_view extra_fields) {
  out += minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(out, static_cast<std::uint64_t>(status));
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nServer: phigate\r\nContent-Type: text/plain\r\n";
  if (status != 204) {  // RFC 9110 §8.6: never in a 204 (a CORS preflight)
    out += "Content-Length: ";
    append_number(out, body.size());
    out += "\r\n";
  }
  if (!location.empty()) {
    out += "Location: ";
    out += location;
    out += "\r\n";
  }
  out += extra_fields;
  if (close) {
    out += "Connection: close\r\n";
  } else if (minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head_only) out += body;
}

void append_chunk_header(std::string& out, std::size_t size) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, size, 16);
  out.append(buf, static_cast<std::size_t>(end - buf));
  out += "\r\n";
}

}  // namespace phigate::http
