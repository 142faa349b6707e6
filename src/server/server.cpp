#include "phigate/server/server.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <list>
#include <map>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "health_checker.hpp"
#include "ingress_watcher.hpp"
#include "phigate/admin/admin_server.hpp"
#include "phigate/audit/writer.hpp"
#include "phigate/check/check.hpp"
#include "phigate/config/loader.hpp"
#include "phigate/core/log.hpp"
#include "phigate/kube/credentials.hpp"
#include "phigate/kube/leader.hpp"
#include "phigate/kube/provider.hpp"
#include "phigate/kube/status.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/proxy/rate_limiter.hpp"
#include "phigate/proxy/worker.hpp"
#include "phigate/upstream/backend_tls.hpp"
#include "phigate/upstream/health.hpp"
#include "webhook.hpp"

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
  /// The configuration file as loaded (before any Ingress is merged in): what every rebuild
  /// starts from when the Kubernetes store changes (the file is not re-read then).
  void set_base(std::shared_ptr<const config::Config> base) { base_ = std::move(base); }
  /// ingress.source kubernetes: follow the API server with these credentials once started.
  void use_kubernetes(kube::Credentials creds) { kube_creds_ = std::move(creds); }

 private:
  bool bind_all(std::string& summary);
  void on_signal(int sig);
  void reload();
  /// Builds from `cfg` (the Ingress folder, or the Kubernetes store once synced) and publishes;
  /// on failure the running snapshot keeps serving. Returns whether it published.
  bool build_and_publish(config::Config cfg, config::Diagnostics& diag, const char* what,
                         const char* failed_as);
  // --- Kubernetes source ---
  void start_kubernetes();
  /// The provider saw a change: the first one arms the debounce timer, later ones while it is
  /// armed do not re-arm it, so a storm of events cannot postpone a build forever and builds
  /// happen at most once per `ingress.debounce`.
  void on_kube_change();
  /// The first full sync: build from the store now and become ready.
  void check_first_sync();
  /// Every second: copies the provider's counters into metrics; one log line per change between
  /// reachable and unreachable.
  void watch_kubernetes();
  /// After a publish (and when leadership is gained): what the StatusWriter should write.
  void update_status(const ingress::LoadResult& loaded, const config::Diagnostics& diag);
  void stop_kubernetes();
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
  std::unordered_set<std::string> check_seen_;  // fingerprints of the check findings already logged
  // Endpoint health that survives reloads (control thread), and the active checks' own thread.
  std::unique_ptr<upstream::HealthRegistry> health_;
  std::unique_ptr<detail::HealthChecker> checker_;
  std::atomic<bool> ready_{false};
  bool draining_ = false;
  std::size_t workers_done_ = 0;
  std::shared_ptr<const config::Config> base_;
  // Kubernetes source. The provider keeps a reference to kube_spec_; the leader election and the
  // status writer use the provider's client, so they are declared (and destroyed) after it.
  std::optional<kube::Credentials> kube_creds_;
  std::string kube_server_;
  config::IngressSpec kube_spec_;
  bool kube_synced_ = false;       // the first build from the store was published
  bool kube_build_armed_ = false;  // the debounce timer runs
  bool kube_unreachable_ = false;
  bool kube_stopped_ = false;
  kube::ProviderStats kube_last_{};
  std::vector<kube::ServedIngress> last_served_;
  net::asio::steady_timer kube_debounce_{control_};
  std::unique_ptr<kube::Provider> provider_;
  std::unique_ptr<kube::LeaderElection> leader_;
  std::unique_ptr<kube::StatusWriter> status_;
  // --- webhook members ---
  std::unique_ptr<detail::Webhook> webhook_;  // ingress.webhook.listen set: the admission webhook
};

ingress::LoadResult Server::current_resources() {
  const auto& ing = current_->config->ingress;
  if (ing.source == config::IngressSource::Directory && manifests_) return manifests_->load(ing.dir);
  if (ing.source == config::IngressSource::Kubernetes && provider_) return provider_->resources();
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
  // Check findings: logged when new (a finding stays until fixed; reloads do not repeat it),
  // counted by rule, severity and safeguard for every snapshot.
  // At most kLogged new ones per build are written out (thousands of Ingresses can bring
  // thousands at once); the rest are summed up in one line and are in the metric.
  constexpr std::size_t kLogged = 50;
  std::size_t fresh = 0;
  std::unordered_set<std::string> seen;
  std::map<std::tuple<std::string, std::string, std::string>, std::int64_t> counts;
  static const std::vector<check::Finding> kNone;
  for (const auto& f : snap.check ? *snap.check : kNone) {
    ++counts[{std::string(f.rule->id), std::string(check::to_string(f.severity)),
              std::string(f.rule->hipaa)}];
    auto fp = f.fingerprint();
    const bool known = check_seen_.contains(fp);
    seen.insert(std::move(fp));
    if (known || f.severity == check::Severity::Info) continue;
    if (++fresh > kLogged) continue;
    if (f.severity == check::Severity::Error) {
      PHI_LOG_ERROR("check: {}", check::describe(f));
    } else {
      PHI_LOG_WARN("check: {}", check::describe(f));
    }
  }
  if (fresh > kLogged) {
    PHI_LOG_WARN(
        "check: {} more new findings not logged (phigate check --config ... lists them all; "
        "phigate_check_findings counts them)",
        fresh - kLogged);
  }
  check_seen_ = std::move(seen);
  std::vector<metrics::ControlStats::CheckCount> by_rule;
  for (const auto& [k, n] : counts) by_rule.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), n});
  control_stats_.set_check(std::move(by_rule), static_cast<std::int64_t>(snap.check_enforced));
  control_stats_.resource_errors.store(static_cast<std::int64_t>(snap.resource_errors));
  control_stats_.tls_context_builds.store(tls::ServerContexts::builds_total());
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
    if (provider_) {
      // The provider and status writer were started with these: following another API server,
      // other namespaces or classes is a new process.
      const auto& was = kube_spec_;
      const auto& now = cfg->ingress;
      const auto& a = was.kubernetes;
      const auto& b = now.kubernetes;
      if (now.source != was.source || now.class_name != was.class_name || now.controller != was.controller ||
          a.kubeconfig != b.kubeconfig || a.context != b.context || a.namespaces != b.namespaces ||
          a.secrets_label_selector != b.secrets_label_selector ||
          a.service_account_dir != b.service_account_dir || a.page_size != b.page_size ||
          a.watch_timeout != b.watch_timeout || a.status != b.status ||
          a.publish_service != b.publish_service || a.publish_address != b.publish_address ||
          a.leader_election != b.leader_election || a.lease_name != b.lease_name ||
          a.lease_namespace != b.lease_namespace || a.identity != b.identity || a.events != b.events) {
        diag.warning(
            path_, 0, "ingress",
            "ingress.source, class, controller, kubernetes, status, leader_election and events changes "
            "need a restart; keeping the current ones");
      }
      const auto debounce = cfg->ingress.debounce;
      cfg->ingress = was;
      cfg->ingress.debounce = debounce;
    }
    auto base = std::make_shared<const config::Config>(*cfg);
    if (build_and_publish(std::move(*cfg), diag, "reloaded", "reload")) base_ = std::move(base);
    return;
  }
  control_stats_.reload_error.fetch_add(1);
  for (const auto& d : diag.entries()) PHI_LOG_ERROR("{}", d.to_string());
  PHI_LOG_ERROR("reload failed, still serving generation {}: {} error(s)", current_->generation,
                fatal_errors(diag));
}

bool Server::build_and_publish(config::Config cfg, config::Diagnostics& diag, const char* what,
                               const char* failed_as) {
  BuildInputs in;
  in.loader = manifests_.get();
  in.health = health_.get();
  in.previous = current_.get();
  std::optional<ingress::LoadResult> loaded;
  // Until the first full sync the Kubernetes source contributes nothing: a partial store would
  // serve some Ingresses and 404 others that exist.
  if (provider_ && kube_synced_) {
    loaded = provider_->resources();
    in.resources = &*loaded;
  }
  auto snap = build_snapshot(std::move(cfg), keys_, current_->generation + 1, diag, in);
  if (snap && audit_ && !reload_audit_keys(snap->config->audit, diag)) snap.reset();
  if (!snap) {
    health_->abandon();
    control_stats_.reload_error.fetch_add(1);
    control_stats_.tls_context_builds.store(tls::ServerContexts::builds_total());
    for (const auto& d : diag.entries()) PHI_LOG_ERROR("{}", d.to_string());
    PHI_LOG_ERROR("{} failed, still serving generation {}: {} error(s)", failed_as, current_->generation,
                  fatal_errors(diag));
    return false;
  }
  control_stats_.reload_ok.fetch_add(1);
  publish(std::move(snap));
  // Endpoints that stayed keep their state; the checker follows the new set of endpoints.
  health_->commit();
  if (checker_) checker_->update(health_->probes());
  log_snapshot(*current_, diag, what);
  if (loaded) update_status(*loaded, diag);
  return true;
}

void Server::start_kubernetes() {
  kube_spec_ = current_->config->ingress;
  kube_server_ = kube_creds_->server;
  const auto namespace_of_creds = kube_creds_->namespace_;
  control_stats_.kube_enabled.store(1);
  provider_ = std::make_unique<kube::Provider>(control_, kube_spec_, std::move(*kube_creds_),
                                               [this] { on_kube_change(); });
  kube_creds_.reset();
  const auto& k = kube_spec_.kubernetes;
  if (k.status || k.events) {
    if (k.status && k.leader_election) {
      auto env = kube::process_env();
      std::string ns = k.lease_namespace;
      if (ns.empty()) ns = env("POD_NAMESPACE").value_or("");
      if (ns.empty()) ns = namespace_of_creds;
      if (ns.empty()) ns = "default";
      const std::string identity = !k.identity.empty() ? k.identity : kube::default_identity(env);
      leader_ = std::make_unique<kube::LeaderElection>(
          control_, provider_->client(), k, ns, identity, [this](bool leading) {
            control_stats_.kube_leading.store(leading ? 1 : 0);
            PHI_LOG_INFO("kubernetes: {} the leader Lease", leading ? "holding" : "no longer holding");
            // A new leader writes what the served snapshot says at once, not at the next change.
            if (leading && status_ && kube_synced_) status_->update(last_served_);
          });
    }
    // Events without status: the writer posts Events and leaves status alone (spec.status off,
    // status.hpp); without leader election every replica may write.
    status_ = std::make_unique<kube::StatusWriter>(
        control_, provider_->client(), k, [this] { return leader_ == nullptr || leader_->leading(); });
  }
  PHI_LOG_INFO("kubernetes: waiting for the first full sync of {}", kube_server_);
  provider_->start();
  if (leader_) leader_->start();
  if (status_) status_->start();
}

void Server::on_kube_change() {
  if (draining_) return;
  if (!kube_synced_) {
    check_first_sync();
    return;
  }
  if (kube_build_armed_) return;
  kube_build_armed_ = true;
  kube_debounce_.expires_after(current_->config->ingress.debounce);
  kube_debounce_.async_wait([this](const net::error_code& ec) {
    kube_build_armed_ = false;
    if (ec || draining_ || !base_) return;
    config::Diagnostics diag;
    build_and_publish(*base_, diag, "rebuilt from the Kubernetes API for", "kubernetes rebuild");
  });
}

void Server::check_first_sync() {
  if (kube_synced_ || draining_ || !provider_ || !provider_->synced() || !base_) return;
  kube_synced_ = true;
  config::Diagnostics diag;
  if (!build_and_publish(*base_, diag, "first full Kubernetes sync built for", "kubernetes first build")) {
    kube_synced_ = false;  // tried again at the next change or tick; not ready meanwhile
    return;
  }
  ready_ = true;
  PHI_LOG_INFO("kubernetes: synced with {}: serving generation {}, ready", kube_server_,
               current_->generation);
}

void Server::watch_kubernetes() {
  if (!provider_) return;
  check_first_sync();
  const auto st = provider_->stats();
  control_stats_.kube_synced.store(provider_->synced() ? 1 : 0);
  control_stats_.kube_lists.store(st.lists);
  control_stats_.kube_relists_gone.store(st.relists_gone);
  control_stats_.kube_watches.store(st.watches);
  control_stats_.kube_events.store(st.events);
  control_stats_.kube_failures.store(st.failures);
  control_stats_.kube_reflectors.store(static_cast<std::int64_t>(st.reflectors));
  control_stats_.kube_secrets_followed.store(static_cast<std::int64_t>(st.secrets_followed));
  if (status_) {
    const auto ss = status_->stats();
    control_stats_.kube_status_updates.store(ss.status_updates);
    control_stats_.kube_status_failures.store(ss.status_failures);
    control_stats_.kube_events_written.store(ss.events);
    control_stats_.kube_event_failures.store(ss.event_failures);
  }
  // Reachability as seen over the last second: failures and no progress (a LIST, an event or a
  // BOOKMARK) is unreachable; progress without failures is back. The reflectors log the reasons.
  const auto failed = st.failures - kube_last_.failures;
  const bool progress =
      st.lists != kube_last_.lists || st.events != kube_last_.events || st.bookmarks != kube_last_.bookmarks;
  if (!kube_unreachable_ && failed > 0 && !progress) {
    kube_unreachable_ = true;
    PHI_LOG_WARN("kubernetes: API server {} unreachable ({} failed request(s) in the last second); {}",
                 kube_server_, failed,
                 kube_synced_ ? "the last snapshot keeps serving" : "still not ready (no full sync yet)");
  } else if (kube_unreachable_ && progress && failed == 0) {
    kube_unreachable_ = false;
    PHI_LOG_INFO("kubernetes: API server {} reachable again", kube_server_);
  }
  kube_last_ = st;
}

void Server::update_status(const ingress::LoadResult& loaded, const config::Diagnostics& diag) {
  if (!status_) return;
  std::unordered_map<std::string, const ingress::Ingress*> by_key;
  for (const auto& ing : loaded.resources.ingresses) by_key.emplace(ing.meta.key(), &ing);
  std::vector<kube::ServedIngress> served;
  for (const auto& key : current_->ingress.used_keys) {
    kube::ServedIngress s;
    const auto slash = key.find('/');
    s.ns = key.substr(0, slash);
    s.name = slash == std::string::npos ? std::string() : key.substr(slash + 1);
    if (const auto it = by_key.find(key); it != by_key.end()) s.current = it->second->load_balancer;
    // Why it fails closed: this Ingress's errors (field and reason; never a header value or body).
    const std::string resource = "Ingress " + key;
    for (const auto& d : diag.entries()) {
      if (d.severity == config::Severity::Error && d.resource == resource)
        s.failed_closed.push_back(d.field + ": " + d.message);
    }
    served.push_back(std::move(s));
  }
  last_served_ = served;
  status_->update(std::move(served));
}

void Server::stop_kubernetes() {
  if (kube_stopped_) return;
  kube_stopped_ = true;
  kube_debounce_.cancel();
  if (status_) status_->stop();
  if (leader_) leader_->stop();  // releases the Lease: a successor takes over at once
  if (provider_) provider_->stop();
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
  stop_kubernetes();
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
    watch_kubernetes();
    control_stats_.rate_limit_evictions.store(proxy::RateLimiter::evictions_total());
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
          stop_kubernetes();
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

  // The Kubernetes source: listeners serve the config file's static routes until the first full
  // sync; /readyz answers 503 until then (a load balancer must not send traffic that would 404).
  if (kube_creds_) {
    start_kubernetes();
  } else {
    ready_ = true;
  }
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
  std::optional<kube::Credentials> creds;
  std::shared_ptr<const config::Config> base;
  if (cfg && cfg->ingress.source == config::IngressSource::Kubernetes) {
    // A credentials problem is a startup error: without them phigate could never become ready.
    const auto& k = cfg->ingress.kubernetes;
    kube::CredentialsError err;
    creds = k.kubeconfig.empty() ? kube::in_cluster(kube::process_env(), err, k.service_account_dir)
                                 : kube::from_kubeconfig(k.kubeconfig, k.context, err);
    if (!creds) {
      std::fprintf(stderr, "phigate: %s: %s: %s\n", path.c_str(),
                   k.kubeconfig.empty() ? "ingress.kubernetes.service_account_dir (in-cluster credentials)"
                                        : "ingress.kubernetes.kubeconfig",
                   err.message.c_str());
      return 1;
    }
  }
  if (cfg) base = std::make_shared<const config::Config>(*cfg);
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
  server.set_base(std::move(base));
  if (creds) server.use_kubernetes(std::move(*creds));
  return server.start(diag);
}

}  // namespace phigate::server
