#include "phigate/server/server.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <list>
#include <thread>

#include "health_checker.hpp"
#include "ingress_watcher.hpp"
#include "webhook.hpp"
#include "phigate/admin/admin_server.hpp"
#include "phigate/audit/writer.hpp"
#include "phigate/config/loader.hpp"
#include "phigate/core/log.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/proxy/worker.hpp"
#include "phigate/upstream/backend_tls.hpp"
#include "phigate/upstream/health.hpp"

namespace phigate::server {

namespace {

using namespace std::chrono_literals;

class Server {
 public:
  Server(std::string path, proxy::SnapshotPtr first, std::shared_ptr<tls::TicketKeyRing> keys,
         std::unique_ptr<ingress::DirectoryLoader> manifests, std::unique_ptr<audit::Writer> audit,
         std::unique_ptr<upstream::HealthRegistry> health)
      : path_(std::move(path)),
        keys_(std::move(keys)),
        current_(std::move(first)),
        manifests_(std::move(manifests)),
        audit_(std::move(audit)),
        health_(std::move(health)) {}

  /// `diag`: what loading the first snapshot reported (logged once serving starts).
  int start(const config::Diagnostics& diag);

 private:
  bool bind_all(std::string& summary);
  void on_signal(int sig);
  void reload();
  /// A change under the Ingress directory: reload once things settle (debounce).
  void schedule_reload();
  void log_snapshot(const proxy::Snapshot& snap, const config::Diagnostics& diag, const char* what);
  void publish(proxy::SnapshotPtr snap);
  void begin_drain();
  void schedule_ticket_rotation();
  void schedule_housekeeping();
  /// Reload: a new active audit key starts a new segment; false (with diag) if it cannot.
  bool reload_audit_keys(const config::AuditSpec& next, config::Diagnostics& diag);
  /// Every second: audit gauges, and one log line per change of the writer's health.
  void watch_audit();
  std::string render_metrics() const;
  /// The Kubernetes resources the running configuration was built from (the Ingress folder's
  /// last load, or the API store): what the admission webhook reviews a candidate against.
  ingress::LoadResult current_resources();

  std::string path_;
  std::shared_ptr<tls::TicketKeyRing> keys_;
  proxy::SnapshotPtr current_;
  std::atomic<std::shared_ptr<const proxy::Snapshot>> published_;  // for admin/other readers
  std::list<proxy::SnapshotPtr> retired_;
  net::asio::io_context control_{1};
  net::asio::signal_set signals_{control_, SIGTERM, SIGINT, SIGHUP};
  net::asio::steady_timer ticket_timer_{control_};
  net::asio::steady_timer housekeeping_{control_};
  net::asio::steady_timer debounce_{control_};
  std::unique_ptr<detail::IngressWatcher> watcher_;
  std::unique_ptr<ingress::DirectoryLoader> manifests_;  // parsed manifest files, reused across reloads
  std::vector<std::unique_ptr<proxy::Worker>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<audit::Writer> audit_;  // outlives the workers (they hold a raw pointer)
  bool audit_was_healthy_ = true;
  metrics::ControlStats control_stats_;
  // Endpoint health that survives reloads (control thread), and the active checks' own thread.
  std::unique_ptr<upstream::HealthRegistry> health_;
  std::unique_ptr<detail::HealthChecker> checker_;
  std::atomic<bool> ready_{false};
  bool draining_ = false;
  std::size_t workers_done_ = 0;
  // --- webhook members ---
  std::unique_ptr<detail::Webhook> webhook_;  // ingress.webhook.listen set: the admission webhook

};

ingress::LoadResult Server::current_resources() {
  const auto& ing = current_->config->ingress;
  if (ing.source == config::IngressSource::Directory && manifests_) return manifests_->load(ing.dir);
  return {};
}

bool Server::bind_all(std::string& summary) {
  const auto& cfg = *current_->config;
  bool https_bound = false;
  auto bind_listener = [&](const std::string& addr, proxy::ListenerKind kind, const char* label) {
    auto ep = net::parse_endpoint(addr);
    if (!ep) {
      PHI_LOG_ERROR("listeners: {}", ep.error().context);
      return false;
    }
    // Port 0: the first worker's bind picks the port, the others join it with SO_REUSEPORT.
    for (auto& w : workers_) {
      auto acc = net::listen(w->io(), *ep, true);
      if (!acc) {
        PHI_LOG_ERROR("cannot listen on {}", acc.error().context);
        return false;
      }
      ep->port(acc->local_endpoint().port());
      w->add_listener(std::move(*acc), kind);
    }
    summary += std::string(" ") + label + "=" + net::to_string(*ep);
    if (kind == proxy::ListenerKind::Https && !https_bound) {
      https_bound = true;
      for (auto& w : workers_) w->set_https_port(ep->port());
    }
    return true;
  };
  for (const auto& a : cfg.listeners.https) {
    if (!bind_listener(a, proxy::ListenerKind::Https, "https")) return false;
  }
  for (const auto& a : cfg.listeners.http) {
    if (!bind_listener(a, proxy::ListenerKind::Http, "http")) return false;
  }
  if (!cfg.listeners.admin.empty()) {
    auto ep = net::parse_endpoint(cfg.listeners.admin);
    if (!ep) {
      PHI_LOG_ERROR("listeners.admin: {}", ep.error().context);
      return false;
    }
    auto acc = net::listen(control_, *ep, false);
    if (!acc) {
      PHI_LOG_ERROR("cannot listen on {}", acc.error().context);
      return false;
    }
    summary += " admin=" + net::to_string(acc->local_endpoint());
    admin_ = std::make_unique<admin::AdminServer>(
        std::move(*acc), admin::AdminHooks{[this] { return ready_.load() && !draining_; },
                                           [this] { return render_metrics(); }});
  }
  return true;
}

std::string Server::render_metrics() const {
  std::vector<const metrics::WorkerShard*> shards;
  for (const auto& w : workers_) shards.push_back(&w->stats());
  return metrics::render(shards, control_stats_);
}

void Server::publish(proxy::SnapshotPtr snap) {
  retired_.push_back(std::move(current_));
  current_ = std::move(snap);
  published_.store(current_);
  control_stats_.snapshot_generation.store(current_->generation);
  for (auto& w : workers_) {
    net::asio::post(w->io(), [w = w.get(), s = current_] { w->adopt(s); });
  }
}

void Server::log_snapshot(const proxy::Snapshot& snap, const config::Diagnostics& diag, const char* what) {
  // Problems confined to one resource: logged once per load (that resource fails closed), and
  // counted in a gauge; the rest of the configuration applies.
  for (const auto& d : diag.entries()) {
    if (d.severity == config::Severity::Error) {
      PHI_LOG_ERROR("{}", d.to_string());
    } else {
      PHI_LOG_WARN("{}", d.to_string());
    }
  }
  control_stats_.resource_errors.store(static_cast<std::int64_t>(snap.resource_errors));
  control_stats_.build_ms.store(static_cast<std::int64_t>(snap.build_time.count()));
  control_stats_.ingresses_used.store(static_cast<std::int64_t>(snap.ingress.used));
  control_stats_.ingresses_failed_closed.store(static_cast<std::int64_t>(snap.ingress.failed_closed));
  control_stats_.backend_tls_unverified_routes.store(static_cast<std::int64_t>(
      std::count_if(snap.clusters.begin(), snap.clusters.end(),
                    [](const upstream::Cluster& c) { return c.tls != nullptr && !c.tls->verify(); })));
  PHI_LOG_INFO(
      "{} {}: generation {} in {} ms: {} routes, ingresses {} used / {} ignored / {} failed closed, "
      "{} conflicts, {} errors",
      what, path_, snap.generation, snap.build_time.count(), snap.routes.size(), snap.ingress.used,
      snap.ingress.ignored, snap.ingress.failed_closed, snap.ingress.conflicts, snap.resource_errors);
}

void Server::schedule_reload() {
  debounce_.expires_after(current_->config->ingress.debounce);
  debounce_.async_wait([this](const net::error_code& ec) {
    if (!ec && !draining_) reload();
  });
}

void Server::reload() {
  config::Diagnostics diag;
  auto cfg = config::load_config(path_, diag);
  proxy::SnapshotPtr snap;
  if (cfg) {
    const auto& old = current_->config->listeners;
    if (cfg->listeners.https != old.https || cfg->listeners.http != old.http ||
        cfg->listeners.admin != old.admin || cfg->workers != current_->config->workers) {
      diag.warning(path_, 0, "listeners",
                   "listener and worker changes need a restart; keeping the current ones");
      cfg->listeners.https = old.https;
      cfg->listeners.http = old.http;
      cfg->listeners.admin = old.admin;
      cfg->workers = current_->config->workers;
    }
    const auto& old_audit = current_->config->audit;
    if (cfg->audit.dir != old_audit.dir || cfg->audit.archive_dir != old_audit.archive_dir ||
        cfg->audit.keys != old_audit.keys) {
      diag.warning(
          path_, cfg->audit.where.line, "audit",
          "audit.dir, audit.keys and audit.archive_dir changes need a restart; keeping the current ones");
      cfg->audit.dir = old_audit.dir;
      cfg->audit.archive_dir = old_audit.archive_dir;
      cfg->audit.keys = old_audit.keys;
    }
    snap = build_snapshot(std::move(*cfg), keys_, current_->generation + 1, diag, manifests_.get(),
                          health_.get());
    if (snap && audit_ && !reload_audit_keys(snap->config->audit, diag)) snap.reset();
  }
  if (!snap) {
    health_->abandon();
    control_stats_.reload_error.fetch_add(1);
    for (const auto& d : diag.entries()) PHI_LOG_ERROR("{}", d.to_string());
    PHI_LOG_ERROR("reload failed, still serving generation {}: {} error(s)", current_->generation,
                  fatal_errors(diag));
    return;
  }
  control_stats_.reload_ok.fetch_add(1);
  publish(std::move(snap));
  // Endpoints that stayed keep their state; the checker follows the new set of endpoints.
  health_->commit();
  if (checker_) checker_->update(health_->probes());
  log_snapshot(*current_, diag, "reloaded");
}

bool Server::reload_audit_keys(const config::AuditSpec& next, config::Diagnostics& diag) {
  // Key files are a mounted Secret: a new active key id re-reads them and starts a new segment
  // encrypted with it (old keys stay in the ring for reading). A key that does not load keeps
  // the running configuration, and the running key, serving.
  if (next.active_key == current_->config->audit.active_key) return true;
  auto ring = audit::KeyRing::load(next.keys);
  if (!ring) {
    diag.error(path_, next.where.line, "audit.keys", ring.error().context);
    return false;
  }
  if (auto err = audit_->rotate_key(next.active_key, std::move(*ring))) {
    diag.error(path_, next.where.line, "audit.active_key", err->context);
    return false;
  }
  PHI_LOG_INFO("audit: new segment with key {}", next.active_key);
  return true;
}

void Server::watch_audit() {
  if (!audit_) return;
  const auto st = audit_->stats();
  const bool healthy = audit_->healthy();
  control_stats_.audit_healthy.store(healthy ? 1 : 0);
  control_stats_.audit_records_written.store(st.records_written);
  control_stats_.audit_bytes_written.store(st.bytes_written);
  control_stats_.audit_segments_sealed.store(st.segments_sealed);
  control_stats_.audit_write_errors.store(st.write_errors);
  control_stats_.audit_chain_tamper_events.store(st.chain_tamper_events);
  if (healthy != audit_was_healthy_) {
    audit_was_healthy_ = healthy;
    if (healthy) {
      PHI_LOG_WARN("audit: writer recovered, serving again ({} write errors so far)", st.write_errors);
    } else {
      PHI_LOG_ERROR("audit: writer {}: failing closed (503){}",
                    st.failed ? "cannot write to disk" : "queue overflow",
                    current_->config->audit.block_on_overflow ? " — overflow: block, workers wait" : "");
    }
  }
}

void Server::begin_drain() {
  if (draining_) return;
  draining_ = true;
  control_stats_.draining.store(1);
  const auto grace = current_->config->timeouts.drain;
  PHI_LOG_INFO("draining: no new connections; in-flight requests have {} ms", grace.count());
  for (auto& w : workers_) {
    net::asio::post(w->io(), [w = w.get(), grace] { w->begin_drain(grace); });
  }
  if (admin_) admin_->stop();
  if (watcher_) watcher_->stop();
  debounce_.cancel();
  ticket_timer_.cancel();
  // --- webhook stop ---
  if (webhook_) webhook_->stop();

}

void Server::on_signal(int sig) {
  if (sig == SIGHUP) {
    if (!draining_) reload();
  } else {
    begin_drain();
  }
  if (!draining_ || sig == SIGHUP) {
    signals_.async_wait([this](const net::error_code& ec, int s) {
      if (!ec) on_signal(s);
    });
  }
}

void Server::schedule_ticket_rotation() {
  ticket_timer_.expires_after(current_->config->tls.ticket_key_rotation);
  ticket_timer_.async_wait([this](const net::error_code& ec) {
    if (ec) return;
    keys_->rotate();
    schedule_ticket_rotation();
  });
}

void Server::schedule_housekeeping() {
  housekeeping_.expires_after(1s);
  housekeeping_.async_wait([this](const net::error_code& ec) {
    if (ec) return;
    // Retired snapshots die here, on the control thread, so that no worker pays for freeing
    // SSL_CTXs: once only this list holds one, nothing can take a new reference.
    retired_.remove_if([](const proxy::SnapshotPtr& s) { return s.use_count() == 1; });
    watch_audit();
    if (workers_done_ < workers_.size()) schedule_housekeeping();
  });
}

int Server::start(const config::Diagnostics& diag) {
  const unsigned n = current_->config->workers;
  for (unsigned i = 0; i < n; ++i) workers_.push_back(proxy::Worker::create(i, current_, audit_.get()));
  control_stats_.audit_enabled.store(audit_ ? 1 : 0);
  control_stats_.audit_healthy.store(audit_ ? 1 : 0);
  std::string summary;
  if (!bind_all(summary)) return 1;
  published_.store(current_);
  control_stats_.snapshot_generation.store(current_->generation);

  // Every listener is bound: now the workers may start.
  for (auto& w : workers_) {
    threads_.emplace_back([this, w = w.get()] {
      w->run();
      net::asio::post(control_, [this] {
        if (++workers_done_ == workers_.size()) {
          signals_.cancel();
          housekeeping_.cancel();
          debounce_.cancel();
          if (watcher_) watcher_->stop();
          ticket_timer_.cancel();
          if (admin_) admin_->stop();
          if (checker_) checker_->stop();
        }
      });
    });
  }
  if (admin_) admin_->start();
  signals_.async_wait([this](const net::error_code& ec, int s) {
    if (!ec) on_signal(s);
  });
  schedule_ticket_rotation();
  schedule_housekeeping();
  checker_ = std::make_unique<detail::HealthChecker>(control_stats_);
  checker_->start();
  checker_->update(health_->probes());
  const auto& ing = current_->config->ingress;
  if (!ing.dir.empty() && ing.watch) {
    watcher_ = std::make_unique<detail::IngressWatcher>(control_, ing.dir, ing.rescan,
                                                        [this] { schedule_reload(); });
    watcher_->start();
  }
  // --- webhook start ---
  if (const auto& wh = current_->config->ingress.webhook; !wh.listen.empty()) {
    std::string error;
    webhook_ = detail::Webhook::create(
        control_, wh, {[this] { return current_->config; }, [this] { return current_resources(); }}, error);
    if (!webhook_) {
      // A startup error like a listener that cannot bind: the workers already run, so they are
      // drained (nothing is in flight yet) before exiting 1.
      PHI_LOG_ERROR("{}", error);
      begin_drain();
      control_.run();
      for (auto& t : threads_) t.join();
      if (checker_) checker_->stop();
      if (audit_) audit_->stop();
      return 1;
    }
    webhook_->start();
    PHI_LOG_INFO("webhook listening on {}", webhook_->local_address());
    summary += " webhook=" + webhook_->local_address();
  }

  ready_ = true;
  log_snapshot(*current_, diag, "loaded");
  PHI_LOG_INFO("phigate ready workers={}{}", n, summary);
  std::printf("phigate ready workers=%u%s\n", n, summary.c_str());
  std::fflush(stdout);
  control_.run();
  for (auto& t : threads_) t.join();
  if (checker_) checker_->stop();
  int rc = 0;
  if (audit_) {
    // Every worker has finished: what they handed over is flushed and the segment sealed.
    if (!audit_->stop()) {
      PHI_LOG_ERROR("audit: some accepted records could not be written before exit");
      rc = 1;
    }
    const auto st = audit_->stats();
    PHI_LOG_INFO("audit: sealed; {} records written, {} segments sealed", st.records_written,
                 st.segments_sealed);
  }
  PHI_LOG_INFO("phigate stopped");
  return rc;
}

}  // namespace

int run(const std::string& path, const std::string& log_level_override) {
  config::Diagnostics diag;
  auto cfg = config::load_config(path, diag);
  core::init_logging(!log_level_override.empty() ? log_level_override : (cfg ? cfg->log_level : "info"));
  auto keys = std::make_shared<tls::TicketKeyRing>();
  proxy::SnapshotPtr snap;
  auto manifests = std::make_unique<ingress::DirectoryLoader>();
  auto health = std::make_unique<upstream::HealthRegistry>();
  if (cfg) snap = build_snapshot(std::move(*cfg), keys, 1, diag, manifests.get(), health.get());
  if (!snap) {
    for (const auto& d : diag.entries()) {
      if (d.severity == config::Severity::Error) std::fprintf(stderr, "phigate: %s\n", d.to_string().c_str());
    }
    return 1;
  }
  // Writes to a peer that closed must fail with EPIPE, not kill the process; a file-size limit
  // must fail the audit write with EFBIG (fail closed), not kill it either.
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
  std::unique_ptr<audit::Writer> writer;
  if (const auto& a = snap->config->audit; !a.dir.empty()) {
    auto ring = audit::KeyRing::load(a.keys);
    if (!ring) {
      std::fprintf(stderr, "phigate: %s:%d: audit.keys: %s\n", path.c_str(), a.where.line,
                   ring.error().context.c_str());
      return 1;
    }
    audit::WriterOptions o;
    o.dir = a.dir;
    o.archive_dir = a.archive_dir;
    o.active_key = a.active_key;
    o.segment_max_bytes = a.segment_max_bytes;
    o.segment_max_age = std::chrono::duration_cast<std::chrono::seconds>(a.segment_max_age);
    o.flush_interval = a.flush_interval;
    o.batch_records = a.batch_records;
    o.queue_bytes_per_producer = a.queue_bytes;
    o.overflow = a.block_on_overflow ? audit::WriterOptions::Overflow::Block
                                     : audit::WriterOptions::Overflow::FailClosed;
    auto w = audit::Writer::start(std::move(o), std::move(*ring), snap->config->workers);
    if (!w) {
      std::fprintf(stderr, "phigate: %s:%d: audit: %s\n", path.c_str(), a.where.line,
                   w.error().context.c_str());
      return 1;
    }
    writer = std::move(*w);
  } else {
    PHI_LOG_WARN("audit log is off (no audit: section): requests leave no audit record");
  }
  health->commit();
  Server server(path, std::move(snap), std::move(keys), std::move(manifests), std::move(writer),
                std::move(health));
  return server.start(diag);
}

}  // namespace phigate::server
