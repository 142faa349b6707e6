#include <openssl/evp.h>

#include "worker_impl.hpp"

#include "audit_events.hpp"
#include "phigate/core/assert.hpp"
#include "phigate/core/log.hpp"
#include "proxy_connection.hpp"

namespace phigate::proxy {

std::unique_ptr<Worker> Worker::create(unsigned id, SnapshotPtr initial, audit::Writer* audit) {
  return std::make_unique<detail::WorkerImpl>(id, std::move(initial), audit);
}

namespace detail {

void on_coroutine_done(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    PHI_BUG(ex.what());
  } catch (...) {
    PHI_BUG("unknown exception in a worker coroutine");
  }
}

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);

upstream::PoolLimits pool_limits(const config::UpstreamSpec& u) {
  return {u.keepalive_connections, u.keepalive_timeout, static_cast<std::uint32_t>(u.keepalive_requests)};
}

}  // namespace

WorkerImpl::WorkerImpl(unsigned id, SnapshotPtr initial, audit::Writer* audit)
    : id_(id),
      snapshot_(std::move(initial)),
      pool_(pool_limits(snapshot_->config->upstream), &stats_.upstream_unsolicited),
      audit_(audit) {
  reset_balancers();
  configure_retry_budget();
}

void WorkerImpl::add_listener(net::tcp::acceptor acceptor, ListenerKind kind) {
  listeners_.push_back({std::move(acceptor), kind});
}

void WorkerImpl::run() {
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    net::asio::co_spawn(io_, accept_loop(i), on_coroutine_done);
  }
  net::asio::co_spawn(io_, tick_loop(), on_coroutine_done);
  io_.run();
}

void WorkerImpl::adopt(SnapshotPtr snap) {
  snapshot_ = std::move(snap);
  reset_balancers();
  configure_retry_budget();
  pool_.set_limits(pool_limits(snapshot_->config->upstream));
}

void WorkerImpl::configure_retry_budget() {
  const auto& u = snapshot_->config->upstream;
  retry_budget_.configure(u.retry_budget_percent, u.retry_budget_min_per_second);
}

void WorkerImpl::reset_balancers() {
  // States are kept, never destroyed or moved: a request in flight on the previous snapshot holds a
  // reference to one across co_awaits (proxy_request), so each lives in its own allocation and
  // is only reset (BalancerState::reset keeps counts when the endpoints are the same).
  const auto& clusters = snapshot_->clusters;
  for (std::size_t i = 0; i < clusters.size(); ++i) balancer(i).reset(clusters[i]);
}

upstream::BalancerState& WorkerImpl::balancer(std::size_t cluster) {
  // A request pinned to an older snapshot may name a cluster index past the current ones; the
  // state adapts to the cluster it is used with (BalancerState tolerates a size change). Growing
  // the vector moves the pointers only, never the states.
  if (cluster >= balancers_.size()) balancers_.resize(cluster + 1);
  auto& s = balancers_[cluster];
  if (!s) s = std::make_unique<upstream::BalancerState>();
  return *s;
}

namespace {

/// The record of a request whose full record is longer than the writer takes (limits let a
/// request carry more recorded text, in its target and audit.headers values, than
/// min(audit.queue_bytes / 4, 1 MiB)): the request still leaves its one record, which says so
/// and keeps the record's @timestamp, its length, SHA-256 and first bytes (ids, client, method
/// and host come first). docs/audit-schema.md "record-too-large".
std::string_view too_large_stand_in(audit::JsonLine& j, std::string_view line) {
  std::string_view timestamp;
  constexpr std::string_view kTs = "{\"@timestamp\":\"";
  if (line.starts_with(kTs)) {
    const auto end = line.find('"', kTs.size());
    if (end != std::string_view::npos) timestamp = line.substr(kTs.size(), end - kTs.size());
  }
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(line.data(), line.size(), md, &n, sha256, nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  // `line` may view into `j`: copy what is kept before clearing it.
  std::string ts(timestamp);
  std::string head(line.substr(0, 2048));
  j.clear();
  if (!ts.empty()) j.field("@timestamp", ts);
  j.plain_field("schema", "phigate.audit/1");
  j.begin_object("event");
  j.plain_field("kind", "event");
  j.plain_field("action", "record-too-large");
  j.end_object();
  j.begin_object("phigate");
  j.begin_object("record");
  j.field("bytes", line.size());
  j.plain_field("sha256", hex);
  j.field("head", head);
  j.end_object();
  j.end_object();
  return j.finish();
}

}  // namespace

bool WorkerImpl::audit_submit(std::string_view line) {
  if (audit_ == nullptr) return true;
  if (line.size() > audit_->max_record()) line = too_large_stand_in(audit_json_, line);
  if (audit_->submit(id_, line)) {
    stats_.audit_records.inc();
    return true;
  }
  stats_.audit_rejected.inc();
  if (now_ - audit_warned_ >= std::chrono::seconds(1)) {
    audit_warned_ = now_;
    PHI_LOG_WARN(
        "[w{}] audit writer refused a record (queue and spill full, or the writer stopped): failing closed",
        id_);
  }
  return false;
}

void WorkerImpl::register_connection(ConnectionBase* c) noexcept {
  c->prev_ = nullptr;
  c->next_ = head_;
  if (head_ != nullptr) head_->prev_ = c;
  head_ = c;
  ++conn_count_;
}

void WorkerImpl::unregister_connection(ConnectionBase* c) noexcept {
  if (c->prev_ != nullptr) {
    c->prev_->next_ = c->next_;
  } else {
    head_ = c->next_;
  }
  if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
  c->prev_ = c->next_ = nullptr;
  --conn_count_;
}

void WorkerImpl::close_acceptors() {
  for (auto& l : listeners_) {
    net::error_code ec;
    l.acceptor.close(ec);
  }
}

void WorkerImpl::begin_drain(std::chrono::milliseconds grace) {
  if (draining_) return;
  draining_ = true;
  now_ = Clock::now();
  drain_deadline_ = now_ + grace;
  close_acceptors();
  pool_.clear();
  for (auto* c = head_; c != nullptr;) {
    auto* next = c->next_;  // drain() only cancels I/O; the connection unregisters later
    c->drain();
    c = next;
  }
}

net::awaitable<void> WorkerImpl::accept_loop(std::size_t index) {
  auto& l = listeners_[index];
  for (;;) {
    auto [ec, sock] = co_await l.acceptor.async_accept(net::use_awaitable_tuple);
    if (draining_ || ec == net::asio::error::operation_aborted || ec == net::asio::error::bad_descriptor) {
      co_return;
    }
    if (ec) {
      // EMFILE and friends: the kernel keeps the connection queued; back off one tick.
      PHI_LOG_WARN("[w{}] accept failed: {}", id_, ec.message());
      net::asio::steady_timer t(io_, kTick);
      co_await t.async_wait(net::use_awaitable_tuple);
      continue;
    }
    stats_.connections_accepted.inc();
    now_ = Clock::now();
    if (conn_count_ + h2_tunnels_ >= snapshot_->config->limits.max_connections_per_worker) {
      // Shed: close at once rather than queue without bound.
      stats_.connections_shed.inc();
      net::error_code ignored;
      if (audit_ != nullptr) {
        const auto peer = sock.remote_endpoint(ignored);
        const auto ip = peer.address().to_string();
        detail::ConnectionFacts facts;
        facts.source_ip = ip;
        facts.source_port = peer.port();
        facts.client_ip = ip;
        facts.worker = id_;
        audit_submit(detail::render_connection_event(audit_json_, facts, std::chrono::system_clock::now(),
                                                     "connection", "denied",
                                                     "limits.max_connections_per_worker", "overloaded", ""));
      }
      sock.close(ignored);
      continue;
    }
    net::error_code ignored;
    sock.set_option(net::tcp::no_delay(true), ignored);
    auto conn =
        std::make_shared<ProxyConnection>(*this, snapshot_, std::move(sock), l.kind == ListenerKind::Https);
    net::asio::co_spawn(io_, ProxyConnection::run(std::move(conn)), on_coroutine_done);
  }
}

net::awaitable<void> WorkerImpl::tick_loop() {
  int ticks = 0;
  for (;;) {
    ticker_.expires_after(kTick);
    co_await ticker_.async_wait(net::use_awaitable_tuple);  // cancelled only at destruction
    now_ = Clock::now();
    retry_budget_.on_tick(kTick);
    const bool force = draining_ && now_ >= drain_deadline_;
    for (auto* c = head_; c != nullptr;) {
      auto* next = c->next_;
      if (force || now_ >= c->deadline) {
        c->expire();
      } else if (c->idle && !c->trimmed && now_ - c->idle_since >= kTick) {
        c->trimmed = true;
        c->release_idle_memory();
      }
      c = next;
    }
    pool_.watch_idle(now_);
    if (++ticks % 10 == 0) {
      pool_.sweep(now_);
      net::trim_block_cache();  // a burst's buffers go back once a second found no use for them
    }
    // Records the audit queue could not take yet (the writer fell behind) move in as it drains.
    if (audit_ != nullptr) audit_->pump(id_);
    if (draining_ && head_ == nullptr) {
      // The last records of this worker reach the queue before the writer is stopped.
      if (audit_ != nullptr && !audit_->pump(id_, true))
        PHI_LOG_WARN("[w{}] audit writer failed with records of this worker still waiting", id_);
      pool_.clear();
      h2_pool_.close_all();
      co_return;  // nothing left: io_context::run() returns once the last handlers finish
    }
  }
}

}  // namespace detail
}  // namespace phigate::proxy
