#include "phigate/metrics/worker_shard.hpp"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <vector>

#include "phigate/core/assert.hpp"

namespace phigate::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

template <class Get>
double sum(std::span<const WorkerShard* const> shards, Get get) {
  double total = 0;
  for (const auto* s : shards) total += static_cast<double>(get(*s));
  return total;
}

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_value(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::string render(std::span<const WorkerShard* const> shards, const ControlStats& control) {
  std::vector<MetricFamily> out;
  auto counter = [&](const char* name, const char* help, auto get) {
    auto f = family(name, help, MetricType::Counter);
    add_value(f, sum(shards, get));
    out.push_back(std::move(f));
  };
  counter("phigate_connections_accepted_total", "Client connections accepted.",
          [](const WorkerShard& s) { return s.connections_accepted.get(); });
  counter("phigate_connections_shed_total", "Client connections closed at accept: per-worker cap reached.",
          [](const WorkerShard& s) { return s.connections_shed.get(); });
  counter("phigate_tls_handshake_failures_total", "Failed or timed-out TLS handshakes.",
          [](const WorkerShard& s) { return s.tls_handshake_failures.get(); });
  counter("phigate_tls_resumed_total", "TLS handshakes that resumed a session.",
          [](const WorkerShard& s) { return s.tls_resumed.get(); });
  counter("phigate_client_certificate_refusals_total",
          "Requests refused because the host requires a valid client certificate.",
          [](const WorkerShard& s) { return s.client_cert_refusals.get(); });
  counter("phigate_misdirected_requests_total",
          "Requests answered 421: Host has another TLS policy than the connection's server name.",
          [](const WorkerShard& s) { return s.misdirected.get(); });
  counter("phigate_proxy_protocol_errors_total",
          "Connections closed because their PROXY protocol header was missing or malformed.",
          [](const WorkerShard& s) { return s.proxy_protocol_errors.get(); });
  counter("phigate_audit_records_total", "Audit records handed to the audit writer.",
          [](const WorkerShard& s) { return s.audit_records.get(); });
  counter("phigate_audit_records_rejected_total",
          "Audit records the writer refused (queue full or disk failing); each is also logged.",
          [](const WorkerShard& s) { return s.audit_rejected.get(); });
  counter("phigate_audit_fail_closed_total",
          "Requests answered 503 because the audit log could not take records.",
          [](const WorkerShard& s) { return s.audit_fail_closed.get(); });
  counter("phigate_redirects_total", "Plain-HTTP requests redirected to HTTPS.",
          [](const WorkerShard& s) { return s.redirects.get(); });
  counter("phigate_upstream_connects_total", "New upstream connections opened.",
          [](const WorkerShard& s) { return s.upstream_connects.get(); });
  counter("phigate_upstream_reuses_total", "Requests sent on a pooled keep-alive upstream connection.",
          [](const WorkerShard& s) { return s.upstream_reuses.get(); });
  counter("phigate_upstream_connect_failures_total", "Upstream connects refused, unreachable or timed out.",
          [](const WorkerShard& s) { return s.upstream_connect_failures.get(); });
  counter("phigate_upstream_timeouts_total", "Upstream reads or writes that hit their deadline.",
          [](const WorkerShard& s) { return s.upstream_timeouts.get(); });
  counter("phigate_upstream_retries_total",
          "Attempts sent again to an upstream after a failed one (proxy_next_upstream, stale pooled "
          "connections).",
          [](const WorkerShard& s) { return s.upstream_retries.get(); });
  counter("phigate_upstream_unsolicited_total",
          "Upstream connections closed because the upstream sent bytes nobody asked for (after a complete "
          "response, or while idle in the pool).",
          [](const WorkerShard& s) { return s.upstream_unsolicited.get(); });

  // --- health ---
  counter("phigate_upstream_ejections_total",
          "Endpoints ejected by passive health checks (consecutive 5xx or connection failures).",
          [](const WorkerShard& s) { return s.upstream_ejections.get(); });
  {
    auto f = family("phigate_health_probes_total", "Active health-check probes run.", MetricType::Counter);
    add_value(f, static_cast<double>(control.health_probes.load()));
    out.push_back(std::move(f));
    auto e = family("phigate_health_probe_failures_total",
                    "Active health-check probes that failed (connect, timeout, unexpected status).",
                    MetricType::Counter);
    add_value(e, static_cast<double>(control.health_probe_failures.load()));
    out.push_back(std::move(e));
    auto g = family("phigate_health_endpoints", "Actively checked endpoints by their check's state.",
                    MetricType::Gauge);
    add_value(g, static_cast<double>(control.health_endpoints_healthy.load()), {{"state", "healthy"}});
    add_value(g, static_cast<double>(control.health_endpoints_unhealthy.load()), {{"state", "unhealthy"}});
    out.push_back(std::move(g));
  }

  // --- balancing and affinity ---

  // --- retries ---
  counter("phigate_upstream_retry_budget_exhausted_total",
          "Failed attempts that would have been retried but for the worker's retry budget (upstream.retry).",
          [](const WorkerShard& s) { return s.upstream_retry_budget_exhausted.get(); });

  // --- TLS to backends ---
  counter("phigate_backend_tls_handshakes_total", "TLS handshakes started with backends (HTTPS backends).",
          [](const WorkerShard& s) { return s.backend_tls_handshakes.get(); });
  counter("phigate_backend_tls_resumed_total", "Backend TLS handshakes that resumed a cached session.",
          [](const WorkerShard& s) { return s.backend_tls_resumed.get(); });
  counter("phigate_backend_tls_failures_total",
          "Backend TLS handshakes that failed (verification, handshake); the audit reason says which check.",
          [](const WorkerShard& s) { return s.backend_tls_failures.get(); });
  counter("phigate_backend_tls_unverified_requests_total",
          "Requests sent to a backend over TLS whose certificate was not verified (proxy-ssl-verify off).",
          [](const WorkerShard& s) { return s.backend_tls_unverified_requests.get(); });

  // --- request buffering ---
  {
    auto held =
        family("phigate_request_buffer_bytes",
               "Request body bytes held in memory now (proxy-request-buffering: \"on\").", MetricType::Gauge);
    add_value(held, sum(shards, [](const WorkerShard& s) { return s.request_buffer_bytes.get(); }));
    out.push_back(std::move(held));
  }
  counter("phigate_request_buffer_shed_total",
          "Buffered requests shed with 503: the worker's limits.request_buffer_worker_bytes was spent.",
          [](const WorkerShard& s) { return s.request_buffer_shed.get(); });

  // --- upgrades ---
  counter("phigate_tunnels_opened_total", "Upgraded connections (WebSocket) spliced after a 101.",
          [](const WorkerShard& s) { return s.tunnels_opened.get(); });
  {
    auto open_tunnels =
        family("phigate_tunnels_open", "Upgraded connections being spliced now.", MetricType::Gauge);
    add_value(open_tunnels, sum(shards, [](const WorkerShard& s) { return s.tunnels_open.get(); }));
    out.push_back(std::move(open_tunnels));
    auto bytes = family("phigate_tunnel_bytes_total",
                        "Bytes spliced through tunnels after the 101, by direction.", MetricType::Counter);
    add_value(bytes, sum(shards, [](const WorkerShard& s) { return s.tunnel_bytes_to_upstream.get(); }),
              {{"direction", "to_upstream"}});
    add_value(bytes, sum(shards, [](const WorkerShard& s) { return s.tunnel_bytes_to_client.get(); }),
              {{"direction", "to_client"}});
    out.push_back(std::move(bytes));
    auto closed =
        family("phigate_tunnels_closed_total", "Tunnels ended, by what ended them.", MetricType::Counter);
    for (std::size_t r = 0; r < std::size(WorkerShard::kTunnelCloseNames); ++r) {
      add_value(closed, sum(shards, [r](const WorkerShard& s) { return s.tunnels_closed[r].get(); }),
                {{"reason", WorkerShard::kTunnelCloseNames[r]}});
    }
    out.push_back(std::move(closed));
  }

  // --- TLS passthrough ---
  {
    auto conns =
        family("phigate_passthrough_connections_total",
               "TLS passthrough connections (ClientHello naming an ssl-passthrough host), by result.",
               MetricType::Counter);
    for (std::size_t r = 0; r < std::size(WorkerShard::kPassthroughResultNames); ++r) {
      add_value(conns, sum(shards, [r](const WorkerShard& s) { return s.passthrough[r].get(); }),
                {{"result", WorkerShard::kPassthroughResultNames[r]}});
    }
    out.push_back(std::move(conns));
    auto bytes = family("phigate_passthrough_bytes_total", "Bytes spliced by TLS passthrough, by direction.",
                        MetricType::Counter);
    add_value(bytes, sum(shards, [](const WorkerShard& s) { return s.passthrough_bytes_to_upstream.get(); }),
              {{"direction", "to_upstream"}});
    add_value(bytes, sum(shards, [](const WorkerShard& s) { return s.passthrough_bytes_to_client.get(); }),
              {{"direction", "to_client"}});
    out.push_back(std::move(bytes));
  }

  // --- basic authentication ---
  {
    auto checks = family("phigate_auth_basic_checks_total",
                         "Basic credentials checked (auth-type: basic), by result.", MetricType::Counter);
    for (std::size_t r = 0; r < std::size(WorkerShard::kAuthBasicNames); ++r) {
      add_value(checks, sum(shards, [r](const WorkerShard& s) { return s.auth_basic[r].get(); }),
                {{"result", WorkerShard::kAuthBasicNames[r]}});
    }
    out.push_back(std::move(checks));
    auto failures =
        family("phigate_auth_basic_failures_total",
               "Basic credentials refused: an unknown user or a wrong password.", MetricType::Counter);
    add_value(failures,
              sum(shards,
                  [](const WorkerShard& s) {
                    return s.auth_basic[static_cast<std::size_t>(WorkerShard::AuthBasic::Failed)].get();
                  }),
              {});
    out.push_back(std::move(failures));
  }

  // --- external authentication ---
  {
    auto checks = family("phigate_auth_external_checks_total",
                         "External authentication subrequests (auth-url), by verdict.", MetricType::Counter);
    for (std::size_t r = 0; r < std::size(WorkerShard::kAuthExternalNames); ++r) {
      add_value(checks, sum(shards, [r](const WorkerShard& s) { return s.auth_external[r].get(); }),
                {{"result", WorkerShard::kAuthExternalNames[r]}});
    }
    out.push_back(std::move(checks));
  }

  // --- HTTP/2 and gRPC ---
  {
    auto requests = family("phigate_requests_total", "Requests whose head completed, by client protocol.",
                           MetricType::Counter);
    add_value(requests, sum(shards, [](const WorkerShard& s) { return s.requests_http1.get(); }),
              {{"protocol", "http/1.1"}});
    add_value(requests, sum(shards, [](const WorkerShard& s) { return s.requests_h2.get(); }),
              {{"protocol", "h2"}});
    out.push_back(std::move(requests));
    auto streams = family("phigate_h2_streams_open", "Client HTTP/2 streams open now.", MetricType::Gauge);
    add_value(streams, sum(shards, [](const WorkerShard& s) { return s.h2_streams_open.get(); }));
    out.push_back(std::move(streams));
    auto errors = family("phigate_h2_connection_errors_total",
                         "HTTP/2 client connections phigate ended with an error GOAWAY, by reason.",
                         MetricType::Counter);
    for (std::size_t r = 0; r < std::size(WorkerShard::kH2ErrorNames); ++r) {
      add_value(errors, sum(shards, [r](const WorkerShard& s) { return s.h2_connection_errors[r].get(); }),
                {{"reason", WorkerShard::kH2ErrorNames[r]}});
    }
    out.push_back(std::move(errors));
  }
  counter("phigate_h2_connections_total", "Client connections that negotiated HTTP/2 (ALPN h2).",
          [](const WorkerShard& s) { return s.h2_connections.get(); });
  counter("phigate_h2_streams_rejected_total",
          "Client HTTP/2 streams refused as malformed (RFC 9113 §8.1.1) or over the header limits.",
          [](const WorkerShard& s) { return s.h2_streams_rejected.get(); });
  counter("phigate_grpc_upstream_connections_total", "HTTP/2 connections opened to gRPC backends.",
          [](const WorkerShard& s) { return s.grpc_upstream_connects.get(); });
  counter("phigate_grpc_upstream_streams_total", "Streams opened to gRPC backends.",
          [](const WorkerShard& s) { return s.grpc_upstream_streams.get(); });

  auto responses =
      family("phigate_responses_total", "Responses sent to clients by status class.", MetricType::Counter);
  static constexpr const char* kClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (std::size_t c = 0; c < 6; ++c) {
    add_value(responses, sum(shards, [c](const WorkerShard& s) { return s.responses_by_class[c].get(); }),
              {{"class", kClasses[c]}});
  }
  out.push_back(std::move(responses));

  // Bounded labels: one series per row of the outcome table.
  auto outcomes = family("phigate_request_outcomes_total",
                         "Requests by outcome (how they ended) and audit decision.", MetricType::Counter);
  for (std::size_t o = 0; o < core::kOutcomeCount; ++o) {
    const auto& info = core::outcome_info(static_cast<core::Outcome>(o));
    add_value(outcomes, sum(shards, [o](const WorkerShard& s) { return s.outcomes[o].get(); }),
              {{"outcome", std::string(info.name)}, {"decision", std::string(info.decision)}});
  }
  out.push_back(std::move(outcomes));

  auto open = family("phigate_connections_open", "Client connections currently open.", MetricType::Gauge);
  add_value(open, sum(shards, [](const WorkerShard& s) { return s.connections_open.get(); }));
  out.push_back(std::move(open));

  auto reloads = family("phigate_reload_total", "Configuration reloads by result.", MetricType::Counter);
  add_value(reloads, static_cast<double>(control.reload_ok.load()), {{"result", "ok"}});
  add_value(reloads, static_cast<double>(control.reload_error.load()), {{"result", "error"}});
  out.push_back(std::move(reloads));

  auto gen = family("phigate_config_generation", "Generation of the configuration snapshot being served.",
                    MetricType::Gauge);
  add_value(gen, static_cast<double>(control.snapshot_generation.load()));
  out.push_back(std::move(gen));
  auto draining = family("phigate_draining", "1 while shutting down gracefully.", MetricType::Gauge);
  add_value(draining, static_cast<double>(control.draining.load()));
  out.push_back(std::move(draining));
  auto gauge = [&](const char* name, const char* help, double v) {
    auto f = family(name, help, MetricType::Gauge);
    add_value(f, v);
    out.push_back(std::move(f));
  };
  gauge("phigate_config_resource_errors",
        "Kubernetes resources with errors in the configuration being served (they fail closed).",
        static_cast<double>(control.resource_errors.load()));
  gauge("phigate_config_build_seconds", "Time taken to build the configuration being served.",
        static_cast<double>(control.build_ms.load()) / 1000.0);
  auto ingresses = family("phigate_ingresses", "Ingresses of our class in the configuration being served.",
                          MetricType::Gauge);
  add_value(ingresses, static_cast<double>(control.ingresses_used.load()), {{"state", "used"}});
  add_value(ingresses, static_cast<double>(control.ingresses_failed_closed.load()),
            {{"state", "failed_closed"}});
  out.push_back(std::move(ingresses));
  {
    std::int64_t enforced = 0;
    const auto counts = control.check_counts(enforced);
    auto findings =
        family("phigate_check_findings",
               "Findings of the HIPAA rule engine in the configuration being served, by rule, severity "
               "and 45 CFR 164.312 safeguard (docs/check.md).",
               MetricType::Gauge);
    for (const auto& c : counts) {
      add_value(findings, static_cast<double>(c.n),
                {{"rule", c.rule}, {"severity", c.severity}, {"safeguard", c.safeguard}});
    }
    out.push_back(std::move(findings));
    gauge("phigate_check_enforced_ingresses",
          "Ingresses failing closed because of an error finding under check.enforce.",
          static_cast<double>(enforced));
  }
  gauge("phigate_backend_tls_unverified_routes",
        "Paths served whose HTTPS backends' certificates are not verified (proxy-ssl-verify off).",
        static_cast<double>(control.backend_tls_unverified_routes.load()));
  gauge("phigate_audit_enabled", "1 when the encrypted audit log is configured.",
        static_cast<double>(control.audit_enabled.load()));
  gauge("phigate_audit_healthy",
        "1 while the audit writer takes records; 0 while the disk fails or a queue overflowed (requests "
        "are refused with 503 unless audit.overflow is block).",
        static_cast<double>(control.audit_healthy.load()));
  auto counter_value = [&](const char* name, const char* help, double v) {
    auto f = family(name, help, MetricType::Counter);
    add_value(f, v);
    out.push_back(std::move(f));
  };
  counter_value("phigate_audit_records_written_total", "Audit records written and fsynced.",
                static_cast<double>(control.audit_records_written.load()));
  counter_value("phigate_audit_bytes_written_total", "Encrypted audit bytes written and fsynced.",
                static_cast<double>(control.audit_bytes_written.load()));
  counter_value("phigate_audit_segments_sealed_total", "Audit segments sealed (immutable from then on).",
                static_cast<double>(control.audit_segments_sealed.load()));
  counter_value("phigate_audit_write_errors_total", "Failed audit write, fsync, open or rename calls.",
                static_cast<double>(control.audit_write_errors.load()));
  counter_value("phigate_audit_chain_tamper_events_total",
                "Audit chain tamper events found at start: the newest segments disagree with the state "
                "file (a sealed segment deleted, truncated or altered, a sequence going backwards, the "
                "state file missing or forged). Recorded in the log; phigate audit verify reports them.",
                static_cast<double>(control.audit_chain_tamper_events.load()));
  counter_value("phigate_tls_context_builds_total",
                "Sets of TLS server contexts built (a reload whose certificates, TLS settings and host "
                "policies are unchanged keeps the running ones).",
                static_cast<double>(control.tls_context_builds.load()));
  counter_value("phigate_rate_limit_evictions_total",
                "Client addresses the rate-limit table forgot to make room for a new one "
                "(limits.rate_limit_keys reached: the least recently seen idle address goes, and its "
                "counters start again when it comes back).",
                static_cast<double>(control.rate_limit_evictions.load()));
  if (control.kube_enabled.load() != 0) {
    gauge("phigate_kube_synced", "1 once every LIST/WATCH of the Kubernetes API completed its first LIST.",
          static_cast<double>(control.kube_synced.load()));
    counter_value("phigate_kube_lists_total", "LIST requests completed against the Kubernetes API.",
                  static_cast<double>(control.kube_lists.load()));
    counter_value("phigate_kube_relists_total", "LISTs made again because a WATCH answered 410 Gone.",
                  static_cast<double>(control.kube_relists_gone.load()));
    counter_value("phigate_kube_watches_total", "WATCH requests started.",
                  static_cast<double>(control.kube_watches.load()));
    counter_value("phigate_kube_watch_events_total", "WATCH events applied (ADDED, MODIFIED, DELETED).",
                  static_cast<double>(control.kube_events.load()));
    counter_value("phigate_kube_failures_total",
                  "Failed Kubernetes API requests and broken WATCH streams (each retried with back-off).",
                  static_cast<double>(control.kube_failures.load()));
    gauge("phigate_kube_reflectors", "LIST/WATCH loops running (one per kind and namespace scope).",
          static_cast<double>(control.kube_reflectors.load()));
    gauge("phigate_kube_secrets_followed", "Secrets followed because an Ingress references them.",
          static_cast<double>(control.kube_secrets_followed.load()));
    gauge("phigate_kube_leading", "1 while this process holds the leader Lease (writes status and Events).",
          static_cast<double>(control.kube_leading.load()));
    counter_value("phigate_kube_status_updates_total", "Ingress status writes.",
                  static_cast<double>(control.kube_status_updates.load()));
    counter_value("phigate_kube_status_failures_total", "Ingress status writes that failed.",
                  static_cast<double>(control.kube_status_failures.load()));
    counter_value("phigate_kube_events_total", "Kubernetes Events created.",
                  static_cast<double>(control.kube_events_written.load()));
    counter_value("phigate_kube_event_failures_total", "Kubernetes Events that could not be created.",
                  static_cast<double>(control.kube_event_failures.load()));
  }
  auto bugs = family("phigate_bugs_total", "Internal invariant violations (PHI_BUG).", MetricType::Counter);
  add_value(bugs, static_cast<double>(core::bug_count()));
  out.push_back(std::move(bugs));

  return prometheus::TextSerializer().Serialize(out);
}

}  // namespace phigate::metrics
