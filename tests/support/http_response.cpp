#include "support/http_response.hpp"

#include <charconv>
#include <optional>

namespace phigate::test {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Next line starting at `pos` without its CRLF (or bare LF); advances `pos` past the terminator.
std::optional<std::string_view> next_line(std::string_view data, std::size_t& pos) {
  const std::size_t nl = data.find('\n', pos);
  if (nl == std::string_view::npos) return std::nullopt;
  std::string_view line = data.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = nl + 1;
  return line;
}

HttpParseResult invalid(std::string why) {
  HttpParseResult r;
  r.state = HttpParseResult::State::Invalid;
  r.error = std::move(why);
  return r;
}

HttpParseResult need_more() {
  return HttpParseResult{};
}

// Parses header fields up to and including the empty line. nullopt: incomplete; sets `error` if invalid.
std::optional<HeaderList> parse_fields(std::string_view data, std::size_t& pos, std::string& error) {
  HeaderList fields;
  for (;;) {
    const auto line = next_line(data, pos);
    if (!line) return std::nullopt;
    if (line->empty()) return fields;
    if (line->front() == ' ' || line->front() == '\t') {
      // Obsolete line folding (RFC 9112 §5.2): join with the previous value, as a lenient client would.
      if (fields.empty()) {
        error = "folded line before any header";
        return std::nullopt;
      }
      fields.back().second += ' ';
      fields.back().second += trim(*line);
      continue;
    }
    const std::size_t colon = line->find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        trim(line->substr(0, colon)) != line->substr(0, colon)) {
      error = "malformed header line: " + std::string(*line);
      return std::nullopt;
    }
    fields.emplace_back(std::string(line->substr(0, colon)), std::string(trim(line->substr(colon + 1))));
  }
}

bool parse_hex(std::string_view s, std::size_t& out) {
  s = trim(s);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc{} && end == s.data() + s.size();
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

std::vector<std::string> HttpResponse::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) out.push_back(v);
  }
  return out;
}

bool HttpResponse::has_header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return true;
  }
  return false;
}

HttpParseResult parse_http_response(std::string_view data, bool head_request, bool eof) {
  std::size_t pos = 0;
  const auto status_line = next_line(data, pos);
  if (!status_line) {
    // Diagnose garbage early rather than waiting for a newline that may never come.
    if (data.size() >= 5 && data.substr(0, 5) != "HTTP/") return invalid("not an HTTP response");
    return need_more();
  }
  HttpResponse resp;
  {
    std::string_view sl = *status_line;
    const std::size_t sp1 = sl.find(' ');
    if (sl.substr(0, 5) != "HTTP/" || sp1 == std::string_view::npos || sl.size() < sp1 + 4) {
      return invalid("malformed status line: " + std::string(sl));
    }
    resp.version = std::string(sl.substr(0, sp1));
    const std::string_view code = sl.substr(sp1 + 1, 3);
    const auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), resp.status);
    if (ec != std::errc{} || end != code.data() + 3 || resp.status < 100 || resp.status > 999 ||
        (sl.size() > sp1 + 4 && sl[sp1 + 4] != ' ')) {
      return invalid("malformed status line: " + std::string(sl));
    }
    resp.reason = sl.size() > sp1 + 5 ? std::string(sl.substr(sp1 + 5)) : std::string();
  }
  std::string error;
  auto fields = parse_fields(data, pos, error);
  if (!error.empty()) return invalid(error);
  if (!fields) return need_more();
  resp.headers = std::move(*fields);

  HttpParseResult done;
  done.state = HttpParseResult::State::Complete;
  auto finish = [&](std::size_t end) {
    resp.wire_bytes = end;
    done.response = std::move(resp);
    return std::move(done);
  };

  // RFC 9112 §6.3 rule 1: these responses never carry a body, whatever the headers say.
  if (head_request || resp.status < 200 || resp.status == 204 || resp.status == 304) return finish(pos);

  const std::string te = resp.header("Transfer-Encoding");
  if (!te.empty()) {
    const std::string_view last =
        trim(std::string_view(te).substr(te.rfind(',') == std::string::npos ? 0 : te.rfind(',') + 1));
    if (iequals(last, "chunked")) {
      resp.chunked = true;
      // First walk the framing without copying: called again for every read, it must stay cheap.
      std::size_t p = pos;
      for (;;) {
        const auto size_line = next_line(data, p);
        if (!size_line) return need_more();
        std::size_t size = 0;
        if (!parse_hex(size_line->substr(0, size_line->find(';')), size)) {
          return invalid("bad chunk size: " + std::string(*size_line));
        }
        if (size == 0) break;
        if (data.size() - p < size + 1) return need_more();
        p += size;
        const auto crlf = next_line(data, p);
        if (!crlf) return need_more();
        if (!crlf->empty()) return invalid("chunk data not followed by CRLF");
      }
      auto trailers = parse_fields(data, p, error);
      if (!error.empty()) return invalid(error);
      if (!trailers) return need_more();
      resp.trailers = std::move(*trailers);
      const std::size_t end = p;
      p = pos;
      for (;;) {
        const auto size_line = next_line(data, p);
        std::size_t size = 0;
        parse_hex(size_line->substr(0, size_line->find(';')), size);
        if (size == 0) break;
        resp.body.append(data.substr(p, size));
        p += size;
        next_line(data, p);
      }
      return finish(end);
    }
    // Rule 4: a non-chunked transfer coding means the body runs until the connection closes.
  } else if (const auto cls = resp.header_values("Content-Length"); !cls.empty()) {
    std::size_t length = 0;
    for (const auto& v : cls) {
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || end != v.data() + v.size() || (&v != &cls.front() && n != length)) {
        return invalid("bad Content-Length: " + v);
      }
      length = n;
    }
    if (data.size() - pos < length) return need_more();
    resp.body = std::string(data.substr(pos, length));
    return finish(pos + length);
  }
  if (!eof) return need_more();
  resp.body = std::string(data.substr(pos));
  return finish(data.size());
}

}  // namespace phigate::test
