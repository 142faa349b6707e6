#include "audit_events.hpp"

#include <openssl/evp.h>

namespace phigate::proxy::detail {

namespace {

std::int64_t nanos(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

void common(audit::JsonLine& j, const ConnectionFacts& c, std::chrono::system_clock::time_point when) {
  char stamp[audit::kTimestampLength];
  j.plain_field("@timestamp", audit::format_timestamp(when, stamp));
  j.plain_field("schema", kAuditSchema);
  j.begin_object("ecs");
  j.plain_field("version", "8.11.0");
  j.end_object();
  j.begin_object("source");
  j.plain_field("ip", c.source_ip);
  j.field("port", c.source_port);
  j.end_object();
  j.begin_object("client");
  j.plain_field("ip", c.client_ip.empty() ? c.source_ip : c.client_ip);
  j.end_object();
  if (!c.tls_version.empty()) {
    j.begin_object("tls");
    j.plain_field("version_protocol", "tls");
    j.plain_field("version", c.tls_version);
    if (!c.tls_cipher.empty()) j.plain_field("cipher", c.tls_cipher);
    if (!c.server_name.empty() || c.cert != nullptr) j.begin_object("client");
    if (!c.server_name.empty()) j.field("server_name", c.server_name);
    if (c.cert != nullptr && c.cert->present) {
      j.begin_object("x509");
      j.begin_object("subject");
      j.field("distinguished_name", c.cert->subject);
      j.end_object();
      j.begin_object("issuer");
      j.field("distinguished_name", c.cert->issuer);
      j.end_object();
      j.plain_field("serial_number", c.cert->serial);
      j.end_object();
      j.begin_object("hash");
      j.plain_field("sha256", c.cert->fingerprint);
      j.end_object();
    }
    if (c.cert != nullptr) j.field("verify", c.cert->verify);
    if (!c.server_name.empty() || c.cert != nullptr) j.end_object();
    j.end_object();
  }
}

std::string sha256_hex(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

}  // namespace

std::string_view render_request(audit::JsonLine& j, const ConnectionFacts& c, const RequestFacts& r,
                                const http::MessageHead* head, const config::AuditSpec& spec) {
  j.clear();
  common(j, c, r.start);
  // Decision, rule and success come from the outcome table, never from the status: a relayed
  // upstream 500 was still allowed, a 308 was a redirect because a phase decided so.
  const auto& info = core::outcome_info(r.outcome);
  j.begin_object("event");
  j.plain_field("kind", "event");
  j.plain_field("action", "http-request");
  j.plain_field("outcome", info.success ? "success" : "failure");
  if (!r.reason.empty()) j.plain_field("reason", r.reason);
  j.field("duration", nanos(r.total));
  j.end_object();
  j.begin_object("http");
  j.begin_object("request");
  if (head != nullptr && !head->method.empty()) j.field("method", head->method);
  j.field("bytes", r.request_bytes);
  j.end_object();
  j.begin_object("response");
  if (r.status != 0) {
    j.field("status_code", r.status);
  } else {
    j.null("status_code");
  }
  j.field("bytes", r.response_bytes);
  j.end_object();
  if (r.h2_stream != 0) {
    j.plain_field("version", "2");  // ECS http.version: "2" for HTTP/2 (the stream is phigate.h2_stream)
  } else if (head != nullptr) {
    char version[4] = {static_cast<char>('0' + head->version_major), '.',
                       static_cast<char>('0' + head->version_minor), 0};
    j.plain_field("version", std::string_view(version, 3));
  }
  j.end_object();
  j.begin_object("url");
  if (!r.host.empty()) j.field("domain", r.host);
  const auto q = r.target.find('?');
  j.field("path", r.target.substr(0, q));
  if (q != std::string_view::npos && q + 1 < r.target.size()) {
    const auto query = r.target.substr(q + 1);
    switch (spec.query) {
      case config::AuditQuery::Keep:
        j.field("query", query);
        break;
      case config::AuditQuery::Hash:
        j.field("query", "sha256:" + sha256_hex(query));
        break;
      case config::AuditQuery::Redact:
        j.plain_field("query", "[redacted]");
        break;
      case config::AuditQuery::Drop:
        break;
    }
  }
  j.end_object();
  if (head != nullptr) {
    if (const auto* ua = head->headers.find("user-agent")) {
      j.begin_object("user_agent");
      j.field("original", *ua);
      j.end_object();
    }
  }
  if (!r.user_name.empty() || !r.user_email.empty()) {
    // As sent (not yet verified when refused): at most 64 bytes of it, since people type passwords
    // into the user field too. auth-url: as the auth service's allowing answer named them.
    constexpr std::size_t kMostUserName = 64;
    j.begin_object("user");
    if (!r.user_name.empty()) j.field("name", r.user_name.substr(0, kMostUserName));
    if (!r.user_email.empty()) j.field("email", r.user_email.substr(0, kMostUserName));
    j.end_object();
  }
  j.begin_object("phigate");
  j.plain_field("request_id", r.request_id);
  j.plain_field("decision", info.decision);
  if (!info.rule.empty()) j.plain_field("rule", info.rule);
  if (!r.route.empty()) j.field("route", r.route);
  if (!r.ingress.empty()) j.field("ingress", r.ingress);
  if (r.rewritten) j.field("rewritten", true);
  if (r.satisfied_by_allowlist) j.plain_field("satisfied_by", "allowlist");
  if (r.error_page != 0) j.field("error_page", r.error_page);
  if (!r.canary.empty()) {
    j.field("canary", true);
    j.field("canary_ingress", r.canary);
  }
  if (!r.upstream.empty() || r.upstream_connect.count() >= 0 || r.upstream_first_byte.count() >= 0) {
    j.begin_object("upstream");
    if (!r.upstream.empty()) j.plain_field("address", r.upstream);
    // A retried request reached the upstream more than once: one record says how often.
    if (r.upstream_attempts > 0) j.field("attempts", r.upstream_attempts);
    if (!r.failed_attempts.empty()) {
      j.begin_array("failed_attempts");
      for (const auto& a : r.failed_attempts) {
        j.begin_element();
        j.plain_field("address", a.endpoint);
        j.plain_field("reason", a.reason);
        if (a.status != 0) j.field("status_code", a.status);
        j.end_object();
      }
      j.end_array();
    }
    if (r.upstream_connect.count() >= 0) j.field("connect_duration", nanos(r.upstream_connect));
    if (r.upstream_first_byte.count() >= 0) j.field("first_byte_duration", nanos(r.upstream_first_byte));
    j.end_object();
  }
  if (r.h2_stream != 0) j.field("h2_stream", static_cast<std::int64_t>(r.h2_stream));
  if (r.grpc_status >= 0) j.field("grpc_status", r.grpc_status);
  if (!r.tunnel_protocol.empty()) {
    j.begin_object("tunnel");
    j.field("protocol", r.tunnel_protocol);
    j.field("bytes_to_upstream", r.tunnel_to_upstream);
    j.field("bytes_to_client", r.tunnel_to_client);
    j.field("duration", nanos(r.tunnel_duration));
    j.plain_field("closed_by", r.tunnel_closed_by);
    j.end_object();
  }
  if (head != nullptr && !spec.headers.empty()) {
    // Header values are PHI-prone: only the names the operator listed.
    j.begin_object("headers");
    for (const auto& name : spec.headers) {
      // Never a credential, even when listed: the record must not hold a reusable password.
      if (http::iequals(name, "authorization") || http::iequals(name, "proxy-authorization")) continue;
      if (const auto* v = head->headers.find(name)) j.field(name, *v);
    }
    j.end_object();
  }
  j.field("worker", c.worker);
  j.field("connection", c.connection);
  j.end_object();
  return j.finish();
}

std::string_view render_tunnel_start(audit::JsonLine& j, const ConnectionFacts& c,
                                     std::chrono::system_clock::time_point when, std::string_view request_id,
                                     std::string_view protocol, std::string_view route,
                                     std::string_view upstream, std::int32_t h2_stream) {
  j.clear();
  common(j, c, when);
  j.begin_object("event");
  j.plain_field("kind", "event");
  j.plain_field("action", "tunnel-start");
  j.plain_field("outcome", "success");
  j.end_object();
  j.begin_object("phigate");
  j.plain_field("request_id", request_id);
  j.plain_field("decision", "allowed");
  if (!route.empty()) j.field("route", route);
  if (!upstream.empty()) {
    j.begin_object("upstream");
    j.plain_field("address", upstream);
    j.end_object();
  }
  j.begin_object("tunnel");
  j.field("protocol", protocol);
  j.end_object();
  if (h2_stream != 0) j.field("h2_stream", static_cast<std::int64_t>(h2_stream));
  j.field("worker", c.worker);
  j.field("connection", c.connection);
  j.end_object();
  return j.finish();
}

std::string_view render_passthrough(audit::JsonLine& j, const ConnectionFacts& c,
                                    std::chrono::system_clock::time_point when, const PassthroughFacts& p) {
  j.clear();
  common(j, c, when);
  // common() writes tls.* only for a terminated session: here only the ClientHello's name is known.
  j.begin_object("tls");
  j.begin_object("client");
  j.field("server_name", p.server_name);
  j.end_object();
  j.end_object();
  j.begin_object("event");
  j.plain_field("kind", "event");
  j.plain_field("action", p.end ? "passthrough" : "passthrough-start");
  j.plain_field("outcome", p.decision == "allowed" ? "success" : "failure");
  if (!p.reason.empty()) j.field("reason", p.reason);
  if (p.end) j.field("duration", nanos(p.duration));
  j.end_object();
  j.begin_object("phigate");
  j.field("decision", p.decision);
  j.plain_field("rule", "ssl-passthrough");
  j.field("ingress", p.ingress);
  j.field("uninspected", true);
  if (!p.upstream.empty()) {
    j.begin_object("upstream");
    j.plain_field("address", p.upstream);
    j.end_object();
  }
  if (p.end && p.decision == "allowed") {
    j.begin_object("passthrough");
    j.field("bytes_to_upstream", p.to_upstream);
    j.field("bytes_to_client", p.to_client);
    j.field("closed_by", p.closed_by);
    j.end_object();
  }
  j.field("worker", c.worker);
  j.field("connection", c.connection);
  j.end_object();
  return j.finish();
}

std::string_view render_connection_event(audit::JsonLine& j, const ConnectionFacts& c,
                                         std::chrono::system_clock::time_point when, std::string_view action,
                                         std::string_view decision, std::string_view rule,
                                         std::string_view reason, std::string_view detail) {
  j.clear();
  common(j, c, when);
  j.begin_object("event");
  j.plain_field("kind", "event");
  j.field("action", action);
  j.field("outcome", "failure");
  j.field("reason", reason);
  j.end_object();
  if (!detail.empty()) {
    j.begin_object("error");
    j.field("message", detail);
    j.end_object();
  }
  j.begin_object("phigate");
  j.field("decision", decision);
  j.field("rule", rule);
  j.field("worker", c.worker);
  j.field("connection", c.connection);
  j.end_object();
  return j.finish();
}

}  // namespace phigate::proxy::detail
