#include "phigate/core/outcome.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace phigate::core {
namespace {

Outcome at(std::size_t i) {
  return static_cast<Outcome>(i);
}

TEST(OutcomeTable, EveryOutcomeHasAFullRow) {
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    const auto& info = outcome_info(at(i));
    EXPECT_FALSE(info.name.empty()) << i;
    EXPECT_FALSE(info.rule.empty()) << info.name;
    EXPECT_TRUE(info.decision == "allowed" || info.decision == "denied" || info.decision == "redirected" ||
                info.decision == "error")
        << info.name << ": " << info.decision;
  }
}

TEST(OutcomeTable, NamesAreUniqueSnakeCase) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    const auto name = outcome_info(at(i)).name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
  }
  EXPECT_EQ(names.size(), kOutcomeCount);
}

TEST(OutcomeTable, OnlyProxiedRedirectedAndPreflightsSucceed) {
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    const bool expected = at(i) == Outcome::Proxied || at(i) == Outcome::CorsPreflight ||
                          outcome_info(at(i)).how == How::Redirected;
    EXPECT_EQ(outcome_info(at(i)).success, expected) << outcome_info(at(i)).name;
  }
}

// The audit schema's strings: SIEM queries are built on them.
TEST(OutcomeTable, DecisionsAndRulesAreTheAuditSchemas) {
  struct Row {
    Outcome o;
    std::string_view decision, rule;
  };
  const Row rows[] = {
      {Outcome::Proxied, "allowed", "route"},
      {Outcome::Redirected, "redirected", "ssl-redirect"},
      {Outcome::AuditUnavailable, "denied", "audit-unavailable"},
      {Outcome::HostHeader, "error", "host-header"},
      {Outcome::HostSyntax, "error", "host-syntax"},
      {Outcome::StrictHttp, "error", "strict-http"},
      {Outcome::PathNormalisation, "error", "path-normalisation"},
      {Outcome::Misdirected, "denied", "sni-host-policy"},
      {Outcome::ClientCertificate, "denied", "client-certificate"},
      {Outcome::ClientCertificateNeedsTls, "denied", "client-certificate-needs-tls"},
      {Outcome::NoRoute, "error", "no-route"},
      {Outcome::AccessGlobal, "denied", "access (global allow/deny)"},
      {Outcome::AccessSourceRange, "denied", "source-range annotation"},
      {Outcome::FailClosed, "denied", "fail-closed"},
      {Outcome::BodyTooLarge, "denied", "body-size"},
      {Outcome::ClientBadRequest, "error", "http-parser"},
      {Outcome::ClientTimeout, "error", "http-parser"},
      {Outcome::ClientClosed, "error", "http-parser"},
      {Outcome::UpstreamConnectRefused, "allowed", "route"},
      {Outcome::UpstreamConnectTimeout, "allowed", "route"},
      {Outcome::UpstreamTimeout, "allowed", "route"},
      {Outcome::UpstreamReset, "allowed", "route"},
      {Outcome::UpstreamBadResponse, "allowed", "route"},
      {Outcome::UpstreamTls, "allowed", "route"},
      {Outcome::NoHealthyEndpoint, "allowed", "route"},
      {Outcome::Internal, "error", "internal"},
      {Outcome::Overloaded, "denied", "overloaded"},
      {Outcome::AppRootRedirect, "redirected", "app-root"},
      {Outcome::RewriteRefused, "error", "rewrite-target"},
      {Outcome::AnnotationRedirect, "redirected", "permanent-redirect/temporal-redirect"},
      {Outcome::WwwRedirect, "redirected", "from-to-www-redirect"},
      {Outcome::CorsPreflight, "allowed", "enable-cors"},
      {Outcome::RateLimited, "denied", "limit-rps/limit-rpm"},
      {Outcome::ConnectionLimited, "denied", "limit-connections"},
      {Outcome::AuthRequired, "denied", "auth-basic"},
      {Outcome::AuthFailed, "denied", "auth-basic"},
      {Outcome::AuthExternalUnauthorized, "denied", "auth-external"},
      {Outcome::AuthExternalSignin, "redirected", "auth-external"},
      {Outcome::AuthExternalForbidden, "denied", "auth-external"},
      {Outcome::AuthExternalError, "error", "auth-external"},
  };
  EXPECT_EQ(std::size(rows), kOutcomeCount);
  for (const auto& r : rows) {
    EXPECT_EQ(outcome_info(r.o).decision, r.decision) << outcome_info(r.o).name;
    EXPECT_EQ(outcome_info(r.o).rule, r.rule) << outcome_info(r.o).name;
  }
}

TEST(OutcomeTable, WhoEndedIt) {
  EXPECT_EQ(outcome_info(Outcome::Proxied).ended_by, Party::Upstream);
  EXPECT_EQ(outcome_info(Outcome::Proxied).how, How::Served);
  EXPECT_EQ(outcome_info(Outcome::Redirected).how, How::Redirected);
  EXPECT_EQ(outcome_info(Outcome::ClientTimeout).ended_by, Party::Client);
  EXPECT_EQ(outcome_info(Outcome::ClientTimeout).how, How::Timeout);
  EXPECT_EQ(outcome_info(Outcome::ClientClosed).how, How::Reset);
  EXPECT_EQ(outcome_info(Outcome::Misdirected).ended_by, Party::Phigate);
  EXPECT_EQ(outcome_info(Outcome::AccessSourceRange).how, How::Refused);
  EXPECT_EQ(outcome_info(Outcome::UpstreamConnectTimeout).ended_by, Party::Upstream);
  EXPECT_EQ(outcome_info(Outcome::UpstreamReset).how, How::Reset);
}

TEST(OutcomeTable, OutOfRangeIsInternal) {
  EXPECT_EQ(outcome_info(Outcome::kCount).name, "internal");
}

TEST(OutcomeOf, EveryErrorKind) {
  struct Row {
    ErrorKind kind;
    Outcome downstream;  // raised with ErrorSource::Downstream
    Outcome upstream;    // raised with ErrorSource::Upstream
  };
  const Row rows[] = {
      {ErrorKind::BadRequest, Outcome::ClientBadRequest, Outcome::UpstreamBadResponse},
      {ErrorKind::UriTooLong, Outcome::ClientBadRequest, Outcome::UpstreamBadResponse},
      {ErrorKind::HeaderTooLarge, Outcome::ClientBadRequest, Outcome::UpstreamBadResponse},
      {ErrorKind::BodyTooLarge, Outcome::BodyTooLarge, Outcome::BodyTooLarge},
      {ErrorKind::NoRoute, Outcome::NoRoute, Outcome::NoRoute},
      {ErrorKind::Denied, Outcome::AccessGlobal, Outcome::AccessGlobal},
      {ErrorKind::ClientCertificate, Outcome::ClientCertificate, Outcome::ClientCertificate},
      {ErrorKind::Misdirected, Outcome::Misdirected, Outcome::Misdirected},
      {ErrorKind::AuditUnavailable, Outcome::AuditUnavailable, Outcome::AuditUnavailable},
      {ErrorKind::ClientClosed, Outcome::ClientClosed, Outcome::ClientClosed},
      {ErrorKind::ClientTimeout, Outcome::ClientTimeout, Outcome::ClientTimeout},
      {ErrorKind::TlsHandshake, Outcome::ClientBadRequest, Outcome::ClientBadRequest},
      {ErrorKind::ConnectRefused, Outcome::UpstreamConnectRefused, Outcome::UpstreamConnectRefused},
      {ErrorKind::ConnectTimeout, Outcome::UpstreamConnectTimeout, Outcome::UpstreamConnectTimeout},
      {ErrorKind::UpstreamReset, Outcome::UpstreamReset, Outcome::UpstreamReset},
      {ErrorKind::UpstreamTimeout, Outcome::UpstreamTimeout, Outcome::UpstreamTimeout},
      {ErrorKind::UpstreamBadResponse, Outcome::UpstreamBadResponse, Outcome::UpstreamBadResponse},
      {ErrorKind::UpstreamTls, Outcome::UpstreamTls, Outcome::UpstreamTls},
      {ErrorKind::NoHealthyEndpoint, Outcome::NoHealthyEndpoint, Outcome::NoHealthyEndpoint},
      {ErrorKind::Overloaded, Outcome::Overloaded, Outcome::Overloaded},
      {ErrorKind::Unavailable, Outcome::FailClosed, Outcome::FailClosed},
      {ErrorKind::LimitExceeded, Outcome::RateLimited, Outcome::RateLimited},
      {ErrorKind::TooManyRequests, Outcome::RateLimited, Outcome::RateLimited},
      {ErrorKind::Internal, Outcome::Internal, Outcome::Internal},
      {ErrorKind::Config, Outcome::Internal, Outcome::Internal},
  };
  // One row per ErrorKind: a new kind must be classified here too.
  EXPECT_EQ(std::size(rows), static_cast<std::size_t>(ErrorKind::Config) + 1);
  for (const auto& r : rows) {
    const auto name = kind_info(r.kind).reason;
    EXPECT_EQ(outcome_of(Error::downstream(r.kind, "ctx")), r.downstream) << name;
    EXPECT_EQ(outcome_of(Error::upstream(r.kind, Retryable::No)), r.upstream) << name;
  }
  EXPECT_EQ(outcome_of(Error::internal("boom")), Outcome::Internal);
}

TEST(OutcomeOf, IgnoresContextAndRetryClass) {
  EXPECT_EQ(outcome_of(Error::downstream(ErrorKind::ClientClosed, "closed mid-request body")),
            outcome_of(Error::downstream(ErrorKind::ClientClosed, "closed mid-request head")));
  EXPECT_EQ(outcome_of(Error::upstream(ErrorKind::UpstreamReset, Retryable::OnlyIfReused)),
            Outcome::UpstreamReset);
}

}  // namespace
}  // namespace phigate::core
