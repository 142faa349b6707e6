// AU* rules: audit controls, 164.312(b). The audit log's configuration (`audit:`); its keys are read
// in Cli scope only. Encryption and overflow handling are built in (evidence rows); AU008 reports the
// settings under which one request's record is longer than the writer takes.
#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "phigate/audit/key_ring.hpp"
#include "phigate/check/check.hpp"

namespace phigate::check {
namespace {

constexpr std::string_view kNistAudit = "SP 800-66r2 5.3.2";

bool any_phi(const Context& ctx) {
  return !ctx.phi_hosts().empty();
}

void audit_off(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  if (!v.config.audit.dir.empty()) return;
  out.push_back(make_finding(info, "the audit log is off (no audit: section): no request is recorded",
                             ctx.config_key("audit")));
}

void key_unreadable(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& a = v.config.audit;
  if (a.dir.empty()) return;
  auto ring = audit::KeyRing::load(a.keys);
  if (!ring) {
    // KeyRing's errors name the file and never hold key material.
    out.push_back(make_finding(info, ring.error().context, ctx.config_key("audit.keys")));
    return;
  }
  if (ring->find(a.active_key) == nullptr) {
    out.push_back(make_finding(info,
                               "active audit key '" + a.active_key + "' is not in audit.keys (" +
                                   ring->path_for(a.active_key) + " missing or invalid)",
                               ctx.config_key("audit.active_key")));
  }
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// A key id that starts with its creation date, "20260105-..." or "2026-01-05...": seconds since the
/// epoch of that day (UTC), or -1.
std::int64_t dated_key_id(std::string_view id) {
  auto digits = [&](std::size_t at, std::size_t n, int& out) {
    if (id.size() < at + n) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (id[i] < '0' || id[i] > '9') return false;
      out = out * 10 + (id[i] - '0');
    }
    return true;
  };
  int y = 0, m = 0, d = 0;
  const bool compact = digits(0, 4, y) && digits(4, 2, m) && digits(6, 2, d) && id.size() > 8 && id[8] == '-';
  const bool dashed = !compact && digits(0, 4, y) && id.size() >= 10 && id[4] == '-' && digits(5, 2, m) &&
                      id[7] == '-' && digits(8, 2, d);
  if (!compact && !dashed) return -1;
  static constexpr std::array<int, 12> kDays{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || m < 1 || m > 12 || d < 1 || d > kDays[static_cast<std::size_t>(m - 1)]) return -1;
  return days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) * 86400;
}

void key_age(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& a = v.config.audit;
  if (a.dir.empty() || a.active_key.empty()) return;
  std::int64_t born = dated_key_id(a.active_key);
  std::string how = "dated by its id";
  if (born < 0) {
    const std::string path = a.keys + "/" + a.active_key + ".key";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;  // AU003 reports a missing key
    born = static_cast<std::int64_t>(st.st_mtime);
    how =
        "by the key file's modification time (on a Secret volume: when it was projected, so the key may be "
        "older; name keys YYYYMMDD-...)";
  }
  const std::int64_t age_days = (ctx.now() - born) / 86400;
  if (age_days <= v.options.audit_key_max_age_days) return;
  out.push_back(make_finding(info,
                             "active audit key '" + a.active_key + "' is " + std::to_string(age_days) +
                                 " days old (" + how + "), over the " +
                                 std::to_string(v.options.audit_key_max_age_days) + " days rotation period",
                             ctx.config_key("audit.active_key")));
}

void query_kept(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& a = v.config.audit;
  if (a.dir.empty() || a.query != config::AuditQuery::Keep) return;
  auto f = make_finding(info,
                        "audit.query: keep records query strings in clear" +
                            std::string(any_phi(ctx) ? " for PHI hosts too" : ""),
                        ctx.config_key("audit.query"));
  if (!any_phi(ctx)) f.severity = Severity::Warning;
  out.push_back(std::move(f));
}

/// Request headers whose values are credentials or session tokens (audit.headers names are
/// lower-case): a record holding one would let its reader replay the session.
constexpr std::array<std::string_view, 11> kCredentialHeaders{
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-access-token",
    "x-amz-security-token",
    "x-forwarded-access-token",
    "x-auth-request-access-token",  // oauth2-proxy
    "x-csrf-token",
};

void phi_headers(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& a = v.config.audit;
  if (a.dir.empty()) return;
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    const auto& h = a.headers[i];
    if (std::find(kCredentialHeaders.begin(), kCredentialHeaders.end(), h) == kCredentialHeaders.end())
      continue;
    auto f = make_finding(info, "audit.headers records the value of " + h + " (credentials, session tokens)",
                          ctx.config_key("audit.headers[" + std::to_string(i) + "]"));
    if (!any_phi(ctx)) f.severity = Severity::Warning;
    out.push_back(std::move(f));
  }
}

/// The longest record the audit writer takes (audit/writer.cpp create() and submit(): min(kMaxRecord,
/// ByteRing::max_record()), the ring being queue_bytes rounded down to a multiple of 4, max_record its
/// quarter). A longer record is refused after its response was sent.
std::uint64_t longest_audit_record(std::uint64_t queue_bytes) {
  return std::min<std::uint64_t>((queue_bytes & ~std::uint64_t{3}) / 4, std::uint64_t{1} << 20);
}

/// A request record (proxy/audit_events.cpp render_request) holds text from the request head: the
/// target (url.path, and url.query under audit.query: keep), Host, User-Agent and the audit.headers
/// values, JSON-escaped by JsonLine. llhttp refuses a target byte outside printable ASCII, so a
/// target byte takes at most 2 bytes ('"', '\'); a field value may hold any byte but control
/// characters, and one that is not UTF-8 becomes \ufffd: 6 bytes. HTTP/1.1 bounds the target by
/// limits.request_line_bytes and the fields by limits.request_header_bytes (http/parser.cpp);
/// HTTP/2 bounds every field and pseudo-field together by http2.max_header_list_bytes.
constexpr std::uint64_t kTargetBytesPerByte = 2;
constexpr std::uint64_t kFieldBytesPerByte = 6;
/// The rest of a record: addresses, TLS and client certificate names, user name and email (64 bytes
/// each before escaping), route, Ingress, upstream attempts, ids and times. A few KiB in practice.
constexpr std::uint64_t kRecordRestBytes = 16u << 10;

void record_too_long(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& c = v.config;
  if (c.audit.dir.empty()) return;
  const std::uint64_t h1 =
      kTargetBytesPerByte * c.limits.request_line_bytes + kFieldBytesPerByte * c.limits.request_header_bytes;
  const std::uint64_t h2 = c.http2.enabled ? kFieldBytesPerByte * c.http2.max_header_list_bytes : 0;
  const std::uint64_t record = std::max(h1, h2) + kRecordRestBytes;
  const std::uint64_t longest = longest_audit_record(c.audit.queue_bytes);
  if (record <= longest) return;
  const std::string head =
      h2 > h1 ? "http2.max_header_list_bytes " + std::to_string(c.http2.max_header_list_bytes)
              : "limits.request_line_bytes " + std::to_string(c.limits.request_line_bytes) +
                    ", limits.request_header_bytes " + std::to_string(c.limits.request_header_bytes);
  auto f = make_finding(
      info,
      "one request (" + head + ") can make an audit record of up to " + std::to_string(record) +
          " bytes (its target, Host, User-Agent and audit.headers values, JSON-escaped), over the " +
          std::to_string(longest) + " bytes the audit writer takes (min(audit.queue_bytes / 4, 1 MiB)): " +
          "such a request's record is replaced by a record-too-large stand-in (its length, SHA-256 and first "
          "2 KiB): who, when and which route stay, the rest of the record is lost" +
          (any_phi(ctx) ? ", on PHI hosts too" : ""),
      ctx.config_key("audit.queue_bytes"));
  out.push_back(std::move(f));
}

constexpr Rule kRules[] = {
    {{.id = "AU001",
      .name = "AuditLogOff",
      .title = "The audit log is off",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Error,
      .remedy = "Add an audit: section (dir, keys, active_key) so every request is recorded",
      .runtime = true},
     &audit_off},
    {{.id = "AU002",
      .name = "AuditLogEncrypted",
      .title = "Audit records are encrypted and tamper-evident",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Error,
      .remedy = "None: built in",
      .runtime = true,
      .built_in =
          "Every audit segment is encrypted with AES-256-GCM under its own HKDF-SHA256 key; frames and "
          "segments are authenticated and chained, the chain's end anchored by a MAC'd state file "
          "(audit/format.cpp, audit/writer.cpp); there is no unencrypted mode"},
     nullptr},
    {{.id = "AU003",
      .name = "AuditKeyUnreadable",
      .title = "The audit keys cannot be read or the active key is missing",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Error,
      .remedy = "Mount the key Secret at audit.keys with <active_key>.key holding 32 random bytes in base64",
      .runtime = false},
     &key_unreadable},
    {{.id = "AU004",
      .name = "AuditKeyAge",
      .title = "The active audit key is older than the rotation period",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Warning,
      .remedy = "Add a new key (named YYYYMMDD-...), make it audit.active_key, keep the old one for reading",
      .runtime = false},
     &key_age},
    {{.id = "AU005",
      .name = "AuditOverflowNeverDrops",
      .title = "A full audit queue does not drop records; one too long for the writer is reduced, not lost",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Error,
      .remedy = "None: built in",
      .runtime = true,
      .built_in =
          "overflow: fail_closed (default) answers new requests 503 while the audit queue is full and keeps "
          "the records of answered requests in a per-worker spill; overflow: block makes the worker wait. "
          "A record that neither ring nor spill can take is refused, counted "
          "(phigate_audit_records_rejected_total) and logged, never dropped silently; a record longer than "
          "min(audit.queue_bytes / 4, 1 MiB) is replaced by a record-too-large stand-in holding its length, "
          "SHA-256 and first 2 KiB, so every request still leaves one record (proxy/worker.cpp, "
          "audit/writer.cpp); AU008 reports settings under which one request can make a record that long"},
     nullptr},
    {{.id = "AU006",
      .name = "AuditQueryKept",
      .title = "Query strings are recorded in clear (audit.query: keep)",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Error,
      .remedy = "Set audit.query to redact (default), hash or drop: query strings often carry PHI",
      .runtime = true,
      .warning_off_phi = true},
     &query_kept},
    {{.id = "AU007",
      .name = "AuditCredentialHeaders",
      .title = "Header values that carry credentials are recorded (Authorization, Cookie)",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Error,
      .remedy =
          "Remove credential headers (authorization, proxy-authorization, cookie, set-cookie, x-api-key, "
          "x-auth-token, x-access-token, x-amz-security-token, x-forwarded-access-token, "
          "x-auth-request-access-token, x-csrf-token) from audit.headers",
      .runtime = true,
      .warning_off_phi = true},
     &phi_headers},
    {{.id = "AU008",
      .name = "AuditRecordTooLong",
      .title = "A request can make an audit record longer than the audit writer takes (it is then reduced to "
               "a stand-in)",
      .safeguard = Safeguard::Audit,
      .hipaa = "164.312(b)",
      .nist = kNistAudit,
      .severity = Severity::Warning,
      .remedy = "Keep 2 x limits.request_line_bytes + 6 x limits.request_header_bytes, and 6 x "
                "http2.max_header_list_bytes, plus 16 KiB within min(audit.queue_bytes / 4, 1 MiB): raise "
                "audit.queue_bytes (the default 4m covers the default limits) or lower those limits",
      .runtime = true},
     &record_too_long},
};

}  // namespace

std::span<const Rule> audit_rules() {
  return kRules;
}

}  // namespace phigate::check
