// audit: building one ECS record with JsonLine, AES-256-GCM frame encryption, and the Writer end to
// end (ring → writer thread → encrypted, fsynced segment file).
#include <benchmark/benchmark.h>
#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "alloc_counter.hpp"
#include "phigate/audit/json_line.hpp"
#include "phigate/audit/key_ring.hpp"
#include "phigate/audit/writer.hpp"
// The audit library has no public framing API: its private format header, for SegmentCipher.
#include "../../src/audit/format_impl.hpp"

namespace phigate::bench {
namespace {

using namespace std::chrono_literals;

// 2026-11-27T08:00:00.123456789Z
const std::chrono::system_clock::time_point kWhen =
    std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::seconds(1795766400) + std::chrono::nanoseconds(123456789)));

// One request record in the shape the proxy writes (ECS field names, nested objects): 32 leaves.
std::string_view build_record(audit::JsonLine& j, std::chrono::system_clock::time_point when,
                              std::int64_t seq) {
  j.clear();
  char stamp[audit::kTimestampLength];
  j.field("@timestamp", audit::format_timestamp(when, stamp));
  j.field("schema", "phigate.audit/1");
  j.begin_object("ecs");
  j.field("version", "8.11.0");
  j.end_object();
  j.begin_object("source");
  j.field("ip", "203.0.113.7");
  j.field("port", 51234);
  j.end_object();
  j.begin_object("client");
  j.field("ip", "198.51.100.23");
  j.end_object();
  j.begin_object("tls");
  j.field("version_protocol", "tls");
  j.field("version", "1.3");
  j.field("cipher", "TLS_AES_128_GCM_SHA256");
  j.begin_object("client");
  j.field("server_name", "app.example.com");
  j.end_object();
  j.end_object();
  j.begin_object("event");
  j.field("kind", "event");
  j.field("action", "http-request");
  j.field("outcome", "success");
  j.field("duration", std::int64_t{1843211});
  j.end_object();
  j.begin_object("http");
  j.begin_object("request");
  j.field("method", "GET");
  j.field("bytes", std::uint64_t{458});
  j.end_object();
  j.begin_object("response");
  j.field("status_code", 200);
  j.field("bytes", std::uint64_t{18342});
  j.end_object();
  j.field("version", "1.1");
  j.end_object();
  j.begin_object("url");
  j.field("domain", "app.example.com");
  j.field("path", "/api/v1/patients/8842/notes");
  j.field("query", "[redacted]");
  j.end_object();
  j.begin_object("user_agent");
  j.field("original", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
  j.end_object();
  j.begin_object("phigate");
  j.field("request_id", "01HZX3K9V7Q2M8N4P6R5T1W0YB");
  j.field("decision", "allow");
  j.field("route", "app.example.com /api");
  j.field("ingress", "clinic/app");
  j.begin_object("upstream");
  j.field("address", "10.0.3.17:8080");
  j.field("connect_duration", std::int64_t{212345});
  j.field("first_byte_duration", std::int64_t{1502003});
  j.end_object();
  j.field("worker", 1);
  j.field("connection", seq);
  j.end_object();
  return j.finish();
}

bool record_ok(std::string_view line, std::int64_t seq) {
  return line.starts_with(R"({"@timestamp":"2026-11-27T08:00:00.123456789Z","schema":"phigate.audit/1",)") &&
         line.ends_with(R"("worker":1,"connection":)" + std::to_string(seq) + "}}") &&
         line.find('\n') == std::string_view::npos &&
         line.find(R"("http":{"request":{"method":"GET","bytes":458},"response":{"status_code":200,)") !=
             std::string_view::npos;
}

void BM_AuditJsonRecord(benchmark::State& state) {
  audit::JsonLine j;
  std::string_view line = build_record(j, kWhen, 7);  // warm-up: grows the buffer once
  if (!record_ok(line, 7)) {
    state.SkipWithError("record is not as expected");
    return;
  }
  const std::size_t size = line.size();
  std::int64_t bytes = 0;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    line = build_record(j, kWhen, 7);
    benchmark::DoNotOptimize(line.data());
    bytes += static_cast<std::int64_t>(line.size());
  }
  report_allocations(state, allocs);
  if (!record_ok(line, 7) || bytes != state.iterations() * static_cast<std::int64_t>(size)) {
    state.SkipWithError("record changed during the run");
  }
  state.SetBytesProcessed(bytes);
  state.SetLabel(std::to_string(size) + " B/record");
}

void BM_AuditFormatTimestamp(benchmark::State& state) {
  char out[audit::kTimestampLength];
  auto t = kWhen;
  std::string_view s;
  for (auto _ : state) {
    benchmark::DoNotOptimize(t);
    s = audit::format_timestamp(t, out);
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  if (s != "2026-11-27T08:00:00.123456789Z") state.SkipWithError("wrong timestamp");
}

audit::Key bench_key() {
  audit::Key k;
  k.id = "bench";
  for (std::size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<unsigned char>(i * 37 + 11);
  return k;
}

// A data frame's plaintext: `records` copies of the record, each followed by '\n' (as the writer
// batches them).
std::string batch_of(std::int64_t records) {
  audit::JsonLine j;
  std::string plain;
  for (std::int64_t i = 0; i < records; ++i) {
    plain.append(build_record(j, kWhen, i));
    plain += '\n';
  }
  return plain;
}

// detail::SegmentCipher::append_frame: one AES-256-GCM data frame (head, ciphertext, tag, chained to
// the previous tag) per iteration, with `records` records in it.
void BM_AuditEncryptFrame(benchmark::State& state) {
  namespace d = audit::detail;
  const std::int64_t records = state.range(0);
  const std::string plain = batch_of(records);
  d::SegmentCipher cipher;
  const audit::Key key = bench_key();
  d::SegmentId id{};
  d::Salt salt{};
  d::KeyCheck check{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<unsigned char>(i + 1);
  for (std::size_t i = 0; i < salt.size(); ++i) salt[i] = static_cast<unsigned char>(0xa0 + i);
  if (!cipher.set_segment(key, id, salt, 1, check)) {
    state.SkipWithError("set_segment failed");
    return;
  }
  std::string frame;
  frame.reserve(plain.size() + d::kFrameOverhead);
  d::Tag prev{};
  d::Tag tag{};
  std::uint32_t frame_no = 0;
  std::int64_t ok = 0;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    frame.clear();
    ok += cipher.append_frame(frame, ++frame_no, d::FrameType::Data, prev, plain, tag);
    prev = tag;
    benchmark::DoNotOptimize(frame.data());
    benchmark::ClobberMemory();
  }
  report_allocations(state, allocs);
  // The last frame must authenticate and decrypt back to the plaintext.
  std::string back;
  if (ok != state.iterations() || frame.size() != plain.size() + d::kFrameOverhead ||
      !cipher.open_frame(reinterpret_cast<const unsigned char*>(frame.data()), frame.size(), back) ||
      back != plain) {
    state.SkipWithError("frame does not decrypt to its plaintext");
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(plain.size()));
  state.SetItemsProcessed(state.iterations() * records);
}

// A private directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != 0 ? base : "/tmp") + "/phigate-micro-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Writer end to end: each iteration submits `batch` records from one producer (Block on overflow),
// then flush() waits until they are encrypted, written and fsynced. Wall time (the work is on the
// writer thread). allocs/op counts the producer thread only.
void BM_AuditWriterSubmitFlush(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  TempDir tmp;
  if (tmp.path().empty()) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  audit::KeyRing keys;
  keys.add(bench_key());
  audit::WriterOptions opt;
  opt.dir = tmp.path() + "/log";
  opt.active_key = "bench";
  opt.flush_interval = 10s;  // only flush() and full batches make it write
  opt.batch_records = 512;
  opt.queue_bytes_per_producer = 8u << 20;
  opt.overflow = audit::WriterOptions::Overflow::Block;
  auto started = audit::Writer::start(opt, keys, 1);
  if (!started) {
    state.SkipWithError("Writer::start failed");
    return;
  }
  auto writer = std::move(*started);
  audit::JsonLine j;
  const std::string record(build_record(j, kWhen, 7));
  std::int64_t accepted = 0;
  bool flushed = true;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    for (std::int64_t i = 0; i < batch; ++i) accepted += writer->submit(0, record);
    flushed = writer->flush() && flushed;
  }
  report_allocations(state, allocs);
  const bool stopped = writer->stop();
  const auto stats = writer->stats();
  const auto submitted = state.iterations() * batch;
  if (!flushed || !stopped || accepted != submitted || stats.rejected != 0 ||
      stats.records_written != static_cast<std::uint64_t>(submitted)) {
    state.SkipWithError("the writer did not write every record");
  }
  state.SetItemsProcessed(submitted);
  state.SetBytesProcessed(submitted * static_cast<std::int64_t>(record.size() + 1));
  state.counters["fsync_batches"] = static_cast<double>(state.iterations());
}

BENCHMARK(BM_AuditJsonRecord);
BENCHMARK(BM_AuditFormatTimestamp);
BENCHMARK(BM_AuditEncryptFrame)->ArgName("records")->Arg(1)->Arg(64)->Arg(512);
BENCHMARK(BM_AuditWriterSubmitFlush)
    ->ArgName("batch")
    ->Arg(4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace phigate::bench
