#include "http_request.hpp"

#include <algorithm>

namespace phigate::test_upstream {

namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::size_t kMaxHeadBytes = Reader::kMaxPendingBytes;
constexpr std::size_t kMaxChunkLineBytes = 4096;
constexpr std::size_t kMaxTrailerBytes = Reader::kMaxPendingBytes;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
  return is_digit(c) || is_alpha(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `fn` with each trimmed, non-empty element of a comma-separated field value.
template <typename Fn>
void for_each_list_element(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string_view element = trim_ows(value.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One "name: value" line of the head or of the trailer section.
std::string parse_field_line(std::string_view line, Headers& out) {
  if (line.find_first_of("\r\n") != std::string_view::npos) return "bare CR or LF in a field line";
  // RFC 9112 §5.2: obs-fold is deprecated; a server may reject it with 400.
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) return "obsolete line folding";
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return "field line without a colon";
  const std::string_view name = line.substr(0, colon);
  // RFC 9112 §5.1: whitespace between name and colon must be rejected (a smuggling vector).
  if (!is_token(name)) return "invalid field name";
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (value.find('\0') != std::string_view::npos) return "NUL in a field value";
  out.emplace_back(std::string(name), std::string(value));
  return {};
}

// Reads one CRLF-terminated line of at most `max_bytes`, consuming it.
bool read_line(Reader& reader, std::size_t max_bytes, std::string& line, std::string& error) {
  std::size_t scanned = 0;
  for (;;) {
    const std::string_view buf = reader.buffered();
    const auto end = buf.find(kCrlf, scanned);
    if (end != std::string_view::npos && end <= max_bytes) {
      line.assign(buf.substr(0, end));
      reader.consume(end + kCrlf.size());
      if (line.find_first_of("\r\n") != std::string::npos) {
        error = "bare CR or LF in chunked body framing";
        return false;
      }
      return true;
    }
    if (buf.size() > max_bytes) {
      error = "chunk-size or trailer line too long";
      return false;
    }
    scanned = buf.empty() ? 0 : buf.size() - 1;
    if (!reader.fill()) {
      error = "connection closed inside the chunked body";
      return false;
    }
  }
}

// Passes exactly `n` bytes from the reader to `sink`.
bool read_exact(Reader& reader, std::uint64_t n, const BodySink& sink, std::string& error) {
  while (n > 0) {
    const std::string_view buf = reader.buffered();
    if (buf.empty()) {
      if (!reader.fill()) {
        error = "connection closed inside the body";
        return false;
      }
      continue;
    }
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
    sink(buf.substr(0, take));
    reader.consume(take);
    n -= take;
  }
  return true;
}

// RFC 9112 §7.1: chunk-size [ BWS ";" chunk-ext ] CRLF ... last-chunk trailer-section CRLF.
bool read_chunked_body(Reader& reader, const BodySink& sink, Headers& trailers, std::string& error) {
  std::string line;
  for (;;) {
    if (!read_line(reader, kMaxChunkLineBytes, line, error)) return false;
    std::uint64_t size = 0;
    std::size_t i = 0;
    for (; i < line.size() && hex_value(line[i]) >= 0; ++i) {
      if (size > (UINT64_MAX >> 4)) {
        error = "chunk size overflows";
        return false;
      }
      size = (size << 4) | static_cast<std::uint64_t>(hex_value(line[i]));
    }
    const std::string_view rest = trim_ows(std::string_view(line).substr(i));
    if (i == 0 || (!rest.empty() && rest.front() != ';')) {
      error = "invalid chunk size line";
      return false;
    }
    if (size == 0) break;
    if (!read_exact(reader, size, sink, error)) return false;
    while (reader.buffered().size() < kCrlf.size()) {
      if (!reader.fill()) {
        error = "connection closed inside the chunked body";
        return false;
      }
    }
    if (reader.buffered().substr(0, kCrlf.size()) != kCrlf) {
      error = "chunk data not followed by CRLF";
      return false;
    }
    reader.consume(kCrlf.size());
  }
  std::size_t trailer_bytes = 0;
  for (;;) {
    if (!read_line(reader, kMaxTrailerBytes, line, error)) return false;
    if (line.empty()) return true;
    trailer_bytes += line.size() + kCrlf.size();
    if (trailer_bytes > kMaxTrailerBytes) {
      error = "trailer section larger than 64 KiB";
      return false;
    }
    if (error = parse_field_line(line, trailers); !error.empty()) {
      error = "trailer: " + error;
      return false;
    }
  }
}

}  // namespace

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;  // 19 digits cannot overflow 64 bits
  std::uint64_t value = 0;
  for (const char c : s) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

bool has_token(const Headers& headers, std::string_view name, std::string_view token) {
  bool found = false;
  for (const auto& [field, value] : headers) {
    if (!iequals(field, name)) continue;
    for_each_list_element(value, [&](std::string_view element) { found = found || iequals(element, token); });
  }
  return found;
}

std::optional<std::string_view> first_field(const Headers& headers, std::string_view name) {
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) return value;
  }
  return std::nullopt;
}

ReadResult read_request_head(Reader& reader, std::string& head, std::string& error) {
  bool started = false;
  std::size_t scanned = 0;
  for (;;) {
    std::string_view buf = reader.buffered();
    if (!started) {
      // RFC 9112 §2.2: ignore empty lines before the request line (sent by some clients after a body).
      std::size_t skip = 0;
      while (buf.size() - skip >= 2 && buf.substr(skip, 2) == kCrlf) skip += 2;
      reader.consume(skip);
      buf = reader.buffered();
      started = !buf.empty() && buf != "\r";
    }
    if (started) {
      const auto end = buf.find("\r\n\r\n", scanned);
      if (end != std::string_view::npos && end + 4 <= kMaxHeadBytes) {
        head.assign(buf.substr(0, end + kCrlf.size()));
        reader.consume(end + 4);
        return ReadResult::Ok;
      }
      if (buf.size() >= kMaxHeadBytes) {
        error = "request head larger than 64 KiB";
        return ReadResult::Error;
      }
      scanned = buf.size() >= 3 ? buf.size() - 3 : 0;
    }
    if (!reader.fill()) {
      if (!started) return ReadResult::Closed;
      error = "connection closed inside the request head";
      return ReadResult::Error;
    }
  }
}

std::string parse_request_head(std::string_view head, RequestHead& out) {
  const auto line_end = head.find(kCrlf);
  const std::string_view request_line = head.substr(0, line_end);
  // RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return "malformed request line";
  }
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!is_token(method)) return "invalid method";
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
      })) {
    return "invalid request target";
  }
  if (version == "HTTP/1.1" || version == "HTTP/1.0") {
    out.version = std::string(version.substr(5));
  } else if (version.size() == 8 && version.starts_with("HTTP/") && is_digit(version[5]) &&
             version[6] == '.' && is_digit(version[7])) {
    return "unsupported HTTP version";
  } else {
    return "malformed request line";
  }
  out.method = std::string(method);
  out.target = std::string(target);

  std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + kCrlf.size();
  while (pos < head.size()) {
    auto end = head.find(kCrlf, pos);
    if (end == std::string_view::npos) end = head.size();
    if (std::string error = parse_field_line(head.substr(pos, end - pos), out.headers); !error.empty()) {
      return error;
    }
    pos = end + kCrlf.size();
  }

  // RFC 9112 §3.2: a 1.1 request without Host, or any request with several, gets 400.
  const auto hosts = std::count_if(out.headers.begin(), out.headers.end(),
                                   [](const auto& field) { return iequals(field.first, "Host"); });
  if (hosts > 1) return "multiple Host fields";
  if (hosts == 0 && out.version == "1.1") return "missing Host field";
  return {};
}

std::string determine_framing(const RequestHead& head, Framing& out) {
  bool has_te = false;
  bool has_cl = false;
  std::vector<std::string> codings;
  std::optional<std::uint64_t> length;
  std::string error;
  for (const auto& [name, value] : head.headers) {
    if (iequals(name, "Transfer-Encoding")) {
      has_te = true;
      for_each_list_element(value, [&](std::string_view coding) {
        std::string lower(coding);
        std::transform(lower.begin(), lower.end(), lower.begin(), to_lower);
        codings.push_back(std::move(lower));
      });
    } else if (iequals(name, "Content-Length")) {
      has_cl = true;
      // RFC 9110 §8.6: a list of identical values may be taken as one; anything else is an error.
      if (value.empty()) error = "invalid Content-Length";
      for_each_list_element(value, [&](std::string_view element) {
        const auto parsed = parse_decimal(element);
        if (!parsed || (length && *length != *parsed)) error = "invalid Content-Length";
        if (parsed) length = parsed;
      });
    }
  }
  if (!error.empty()) return error;
  // RFC 9112 §6.1: both present is a request smuggling vector; reject rather than guess.
  if (has_te && has_cl) return "both Transfer-Encoding and Content-Length";
  if (has_te) {
    if (codings.size() != 1 || codings.front() != "chunked") return "unsupported Transfer-Encoding";
    out.kind = BodyFraming::Chunked;
  } else if (has_cl) {
    if (!length) return "invalid Content-Length";
    out.kind = BodyFraming::Length;
    out.length = *length;
  }
  return {};
}

bool read_body(Reader& reader, const Framing& framing, const BodySink& sink, Headers& trailers,
               std::string& error) {
  switch (framing.kind) {
    case BodyFraming::None:
      return true;
    case BodyFraming::Length:
      return read_exact(reader, framing.length, sink, error);
    case BodyFraming::Chunked:
      return read_chunked_body(reader, sink, trailers, error);
  }
  return true;
}

}  // namespace phigate::test_upstream
