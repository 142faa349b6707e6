#include "phigate/core/outcome.hpp"

#include <array>

namespace phigate::core {

namespace {

// Indexed by Outcome. Decision and rule strings are the audit schema's (docs/audit-schema.md):
// renaming one breaks every SIEM query built on it.
constexpr std::array<OutcomeInfo, kOutcomeCount> kOutcomes{{
    {"proxied", "allowed", "route", Party::Upstream, How::Served, true},
    {"redirected", "redirected", "ssl-redirect", Party::Phigate, How::Redirected, true},
    {"audit_unavailable", "denied", "audit-unavailable", Party::Phigate, How::Unavailable, false},
    {"host_header", "error", "host-header", Party::Client, How::Invalid, false},
    {"host_syntax", "error", "host-syntax", Party::Client, How::Invalid, false},
    {"strict_http", "error", "strict-http", Party::Client, How::Invalid, false},
    {"path_normalisation", "error", "path-normalisation", Party::Client, How::Invalid, false},
    {"misdirected", "denied", "sni-host-policy", Party::Phigate, How::Refused, false},
    {"client_certificate", "denied", "client-certificate", Party::Phigate, How::Refused, false},
    {"client_certificate_needs_tls", "denied", "client-certificate-needs-tls", Party::Phigate, How::Refused,
     false},
    {"no_route", "error", "no-route", Party::Phigate, How::Unavailable, false},
    {"access_global", "denied", "access (global allow/deny)", Party::Phigate, How::Refused, false},
    {"access_source_range", "denied", "source-range annotation", Party::Phigate, How::Refused, false},
    {"fail_closed", "denied", "fail-closed", Party::Phigate, How::Unavailable, false},
    {"body_too_large", "denied", "body-size", Party::Phigate, How::Refused, false},
    {"client_bad_request", "error", "http-parser", Party::Client, How::Invalid, false},
    // One rule for head and body: the request reader noticed (the error carries no phase, and a
    // string test on its context would be the inference this table exists to remove).
    {"client_timeout", "error", "http-parser", Party::Client, How::Timeout, false},
    {"client_closed", "error", "http-parser", Party::Client, How::Reset, false},
    // Ended by the upstream after every phase allowed the request: the decision stays "allowed".
    {"upstream_connect_refused", "allowed", "route", Party::Upstream, How::Refused, false},
    {"upstream_connect_timeout", "allowed", "route", Party::Upstream, How::Timeout, false},
    {"upstream_timeout", "allowed", "route", Party::Upstream, How::Timeout, false},
    {"upstream_reset", "allowed", "route", Party::Upstream, How::Reset, false},
    {"upstream_bad_response", "allowed", "route", Party::Upstream, How::Invalid, false},
    {"upstream_tls", "allowed", "route", Party::Upstream, How::Invalid, false},
    {"no_healthy_endpoint", "allowed", "route", Party::Upstream, How::Unavailable, false},
    {"internal", "error", "internal", Party::Phigate, How::Unavailable, false},
    {"overloaded", "denied", "overloaded", Party::Phigate, How::Unavailable, false},
    {"app_root_redirect", "redirected", "app-root", Party::Phigate, How::Redirected, true},
    {"rewrite_refused", "error", "rewrite-target", Party::Client, How::Invalid, false},
    {"annotation_redirect", "redirected", "permanent-redirect/temporal-redirect", Party::Phigate,
     How::Redirected, true},
    {"www_redirect", "redirected", "from-to-www-redirect", Party::Phigate, How::Redirected, true},
    {"cors_preflight", "allowed", "enable-cors", Party::Phigate, How::Served, true},
    {"rate_limited", "denied", "limit-rps/limit-rpm", Party::Phigate, How::Refused, false},
    {"connection_limited", "denied", "limit-connections", Party::Phigate, How::Refused, false},
    {"auth_required", "denied", "auth-basic", Party::Phigate, How::Refused, false},
    {"auth_failed", "denied", "auth-basic", Party::Phigate, How::Refused, false},
    {"auth_external_unauthorized", "denied", "auth-external", Party::Phigate, How::Refused, false},
    {"auth_external_signin", "redirected", "auth-external", Party::Phigate, How::Redirected, true},
    {"auth_external_forbidden", "denied", "auth-external", Party::Phigate, How::Refused, false},
    {"auth_external_error", "error", "auth-external", Party::Upstream, How::Unavailable, false},
}};

}  // namespace

const OutcomeInfo& outcome_info(Outcome o) noexcept {
  const auto i = static_cast<std::size_t>(o);
  return kOutcomes[i < kOutcomes.size() ? i : static_cast<std::size_t>(Outcome::Internal)];
}

Outcome outcome_of(const Error& e) noexcept {
  switch (e.kind) {
    case ErrorKind::BadRequest:
    case ErrorKind::UriTooLong:
    case ErrorKind::HeaderTooLarge:
      // The response parser raises these kinds too (a header too large, a bad status line).
      return e.source == ErrorSource::Upstream ? Outcome::UpstreamBadResponse : Outcome::ClientBadRequest;
    case ErrorKind::TlsHandshake:
      return Outcome::ClientBadRequest;
    case ErrorKind::BodyTooLarge:
      return Outcome::BodyTooLarge;
    case ErrorKind::NoRoute:
      return Outcome::NoRoute;
    // Access refusals are decided by the access phase (global or source range); an error of this
    // kind raised elsewhere is a refusal by the global policy.
    case ErrorKind::Denied:
      return Outcome::AccessGlobal;
    case ErrorKind::ClientCertificate:
      return Outcome::ClientCertificate;
    case ErrorKind::Misdirected:
      return Outcome::Misdirected;
    case ErrorKind::AuditUnavailable:
      return Outcome::AuditUnavailable;
    case ErrorKind::ClientClosed:
      return Outcome::ClientClosed;
    case ErrorKind::ClientTimeout:
      return Outcome::ClientTimeout;
    case ErrorKind::ConnectRefused:
      return Outcome::UpstreamConnectRefused;
    case ErrorKind::ConnectTimeout:
      return Outcome::UpstreamConnectTimeout;
    case ErrorKind::UpstreamReset:
      return Outcome::UpstreamReset;
    case ErrorKind::UpstreamTimeout:
      return Outcome::UpstreamTimeout;
    case ErrorKind::UpstreamBadResponse:
      return Outcome::UpstreamBadResponse;
    case ErrorKind::UpstreamTls:
      return Outcome::UpstreamTls;
    case ErrorKind::NoHealthyEndpoint:
      return Outcome::NoHealthyEndpoint;
    case ErrorKind::Overloaded:
      return Outcome::Overloaded;
    case ErrorKind::Unavailable:
      return Outcome::FailClosed;
    // Raised by the rate-limit phase only, which sets its own outcome (rate or connection limit).
    case ErrorKind::LimitExceeded:
    case ErrorKind::TooManyRequests:
      return Outcome::RateLimited;
    case ErrorKind::Unauthorized:
      return Outcome::AuthFailed;
    case ErrorKind::Internal:
    case ErrorKind::Config:
      return Outcome::Internal;
  }
  return Outcome::Internal;
}

}  // namespace phigate::core
