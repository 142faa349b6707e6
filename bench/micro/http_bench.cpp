// http: request parsing (llhttp wrapper), header rewriting (hop-by-hop, X-Forwarded-*) and
// serialising the upstream request head.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"
#include "phigate/http/forwarding.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/serializer.hpp"

namespace phigate::bench {
namespace {

// A browser GET as it reaches the proxy: 12 fields, 529 bytes.
constexpr std::string_view kBrowserGet =
    "GET /app/dashboard?tab=overview&range=7d HTTP/1.1\r\n"
    "Host: app.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://app.example.com/login\r\n"
    "Cookie: session=3f9a1c7e5b2d4086; theme=dark\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n";

constexpr std::string_view kJsonBody = R"({"item":"gauze","count":12})";
constexpr std::string_view kApiPost =
    "POST /api/v1/items HTTP/1.1\r\n"
    "Host: app.example.com\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: application/json\r\n"
    "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 27\r\n"
    "\r\n"
    R"({"item":"gauze","count":12})";

// A request as a load balancer forwards it: 12 fields, among them hop-by-hop ones (Connection,
// the field it names, Keep-Alive, TE) and forwarding fields to replace or extend.
constexpr std::string_view kForwardedGet =
    "GET /api/v1/items/42?expand=owner HTTP/1.1\r\n"
    "Host: app.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=3f9a1c7e5b2d4086\r\n"
    "Connection: keep-alive, X-Trace\r\n"
    "X-Trace: 9f2c\r\n"
    "Keep-Alive: timeout=5\r\n"
    "TE: trailers\r\n"
    "X-Forwarded-For: 198.51.100.23\r\n"
    "X-Forwarded-Proto: https\r\n"
    "X-Request-Id: 0d6f1d8e-lb\r\n"
    "\r\n";

bool parsed_whole(const http::Parser& p, http::ParseStatus st) {
  return st == http::ParseStatus::Paused && p.head_complete() && p.message_complete();
}

// Parses the GET head once per iteration (reset in between, as for a new connection).
void BM_ParseGet(benchmark::State& state) {
  http::Parser parser(http::Parser::Kind::Request, http::ParserLimits{});
  const char* data = kBrowserGet.data();
  std::size_t len = kBrowserGet.size();
  std::int64_t complete = 0;
  std::size_t consumed = 0;
  auto st = parser.feed(data, len, consumed);  // warm-up: grows the header storage once
  if (!parsed_whole(parser, st) || consumed != len || parser.head().method != "GET" ||
      parser.head().headers.size() != 12 || parser.head().target != "/app/dashboard?tab=overview&range=7d" ||
      parser.head().headers.find("sec-fetch-site") == nullptr) {
    state.SkipWithError("GET not parsed as expected");
    return;
  }
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    benchmark::DoNotOptimize(data);
    benchmark::DoNotOptimize(len);
    parser.reset();
    st = parser.feed(data, len, consumed);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(consumed);
    complete += parsed_whole(parser, st) && consumed == len;
  }
  report_allocations(state, allocs);
  if (complete != state.iterations() || parser.head().headers.size() != 12) {
    state.SkipWithError("a GET was not parsed completely");
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kBrowserGet.size()));
  state.SetItemsProcessed(state.iterations());
}

std::size_t body_bytes(const http::Parser& p) {
  std::size_t n = 0;
  for (const auto& piece : p.body()) n += piece.size();
  return n;
}

// Parses a POST head and its 27-byte JSON body: pause at head end, then the body to message end.
void BM_ParsePostWithBody(benchmark::State& state) {
  http::Parser parser(http::Parser::Kind::Request, http::ParserLimits{});
  const char* data = kApiPost.data();
  std::size_t len = kApiPost.size();
  const auto parse = [&]() -> bool {
    parser.reset();
    std::size_t head = 0;
    auto st = parser.feed(data, len, head);
    if (st != http::ParseStatus::Paused || !parser.head_complete() || parser.message_complete()) return false;
    std::size_t rest = 0;
    st = parser.feed(data + head, len - head, rest);
    return parsed_whole(parser, st) && head + rest == len;
  };
  if (!parse() || parser.head().method != "POST" || parser.head().content_length != kJsonBody.size() ||
      body_bytes(parser) != kJsonBody.size() || parser.body().front() != kJsonBody) {
    state.SkipWithError("POST not parsed as expected");
    return;
  }
  std::int64_t complete = 0;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    benchmark::DoNotOptimize(data);
    benchmark::DoNotOptimize(len);
    const bool ok = parse();
    benchmark::DoNotOptimize(ok);
    complete += ok && body_bytes(parser) == kJsonBody.size();
  }
  report_allocations(state, allocs);
  if (complete != state.iterations()) state.SkipWithError("a POST was not parsed completely");
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kApiPost.size()));
  state.SetItemsProcessed(state.iterations());
}

// The parsed kForwardedGet, kept as plain strings so each iteration can rebuild the header list.
struct ParsedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> fields;
};

bool parse_forwarded(ParsedRequest& out) {
  http::Parser parser(http::Parser::Kind::Request, http::ParserLimits{});
  std::size_t consumed = 0;
  const auto st = parser.feed(kForwardedGet.data(), kForwardedGet.size(), consumed);
  if (!parsed_whole(parser, st) || parser.head().headers.size() != 12) return false;
  out.method = parser.head().method;
  out.target = parser.head().target;
  for (const auto& h : parser.head().headers) out.fields.emplace_back(h.name, h.value);
  return true;
}

// Puts the request's 12 fields back into `list` (capacity reused: no allocation once warm).
void restore(http::HeaderList& list, const ParsedRequest& req) {
  list.clear();
  for (const auto& [name, value] : req.fields) list.add(name, value);
}

http::ForwardInfo forward_info(bool trusted) {
  http::ForwardInfo info;
  info.client_ip = "203.0.113.7";
  info.peer_trusted = trusted;
  info.proto = "https";
  info.host = "app.example.com";
  info.port = 443;
  info.request_id = "01HZX3K9V7Q2M8N4P6R5T1W0YB";
  return info;
}

// What the rewritten head must look like. From an untrusted peer the incoming X-Forwarded-* and
// X-Request-Id are replaced; from a trusted one X-Forwarded-For is extended and the others kept.
bool rewritten_ok(const http::HeaderList& h, const std::string& wire, bool trusted) {
  for (const char* gone : {"connection", "x-trace", "keep-alive", "te", "transfer-encoding"}) {
    if (h.find(gone) != nullptr) return false;
  }
  const std::string* xff = h.find("x-forwarded-for");
  const std::string* proto = h.find("x-forwarded-proto");
  const std::string* rid = h.find("x-request-id");
  const std::string* real = h.find("x-real-ip");
  const std::string want_xff = trusted ? "198.51.100.23, 203.0.113.7" : "203.0.113.7";
  const std::string want_rid = trusted ? "0d6f1d8e-lb" : "01HZX3K9V7Q2M8N4P6R5T1W0YB";
  return h.size() == 11 && h.count("x-forwarded-for") == 1 && xff != nullptr && *xff == want_xff &&
         proto != nullptr && *proto == "https" && rid != nullptr && *rid == want_rid && real != nullptr &&
         *real == "203.0.113.7" && h.find("x-forwarded-port") != nullptr &&
         wire.starts_with("GET /api/v1/items/42?expand=owner HTTP/1.1\r\nHost: app.example.com\r\n") &&
         wire.ends_with("\r\n\r\n") &&
         wire.find("X-Forwarded-For: " + want_xff + "\r\n") != std::string::npos;
}

enum class Stage { RestoreOnly, Rewrite };

// Per iteration: rebuild the 12 parsed fields, then (Rewrite) remove hop-by-hop fields, set the
// forwarding fields and serialise the upstream head into a reused string. RestoreOnly is the
// baseline to subtract.
void run_rewrite(benchmark::State& state, Stage stage, bool trusted) {
  ParsedRequest req;
  if (!parse_forwarded(req)) {
    state.SkipWithError("request not parsed as expected");
    return;
  }
  const http::ForwardInfo info = forward_info(trusted);
  http::HeaderList headers;
  std::string out;
  const auto once = [&] {
    restore(headers, req);
    if (stage == Stage::RestoreOnly) return;
    http::remove_hop_by_hop(headers);
    http::set_forwarding_headers(headers, info);
    out.clear();
    http::append_request_head(out, req.method, req.target, headers, http::Framing{});
  };
  once();  // warm-up: grows every buffer to its final size
  if (stage == Stage::Rewrite ? !rewritten_ok(headers, out, trusted) : headers.size() != 12) {
    state.SkipWithError("rewritten head is not as expected");
    return;
  }
  const std::size_t wire_size = out.size();
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    once();
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(headers);
    benchmark::ClobberMemory();
  }
  report_allocations(state, allocs);
  if (stage == Stage::Rewrite ? !rewritten_ok(headers, out, trusted) || out.size() != wire_size
                              : headers.size() != 12) {
    state.SkipWithError("rewritten head changed during the run");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_HeaderRestoreBaseline(benchmark::State& state) {
  run_rewrite(state, Stage::RestoreOnly, false);
}
void BM_HeaderRewriteUntrustedPeer(benchmark::State& state) {
  run_rewrite(state, Stage::Rewrite, false);
}
void BM_HeaderRewriteTrustedPeer(benchmark::State& state) {
  run_rewrite(state, Stage::Rewrite, true);
}

// Serialising an already rewritten 11-field head only.
void BM_SerializeRequestHead(benchmark::State& state) {
  ParsedRequest req;
  if (!parse_forwarded(req)) {
    state.SkipWithError("request not parsed as expected");
    return;
  }
  http::HeaderList headers;
  restore(headers, req);
  http::remove_hop_by_hop(headers);
  http::set_forwarding_headers(headers, forward_info(false));
  std::string out;
  http::append_request_head(out, req.method, req.target, headers, http::Framing{});
  const std::string expected = out;
  if (!rewritten_ok(headers, out, false)) {
    state.SkipWithError("rewritten head is not as expected");
    return;
  }
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    out.clear();
    http::append_request_head(out, req.method, req.target, headers, http::Framing{});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  report_allocations(state, allocs);
  if (out != expected) state.SkipWithError("serialised head changed during the run");
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}

BENCHMARK(BM_ParseGet);
BENCHMARK(BM_ParsePostWithBody);
BENCHMARK(BM_HeaderRestoreBaseline);
BENCHMARK(BM_HeaderRewriteUntrustedPeer);
BENCHMARK(BM_HeaderRewriteTrustedPeer);
BENCHMARK(BM_SerializeRequestHead);

}  // namespace
}  // namespace phigate::bench
