#include "upstream_attempt.hpp"

#include "balance_input.hpp"
#include "worker_impl.hpp"

namespace phigate::proxy::detail {

AttemptPlan::AttemptPlan(WorkerImpl& worker, const upstream::Cluster& cluster, const Request& r,
                         std::string_view method, std::size_t cluster_index)
    : rs(cluster.retry),
      balancer(worker.balancer(cluster_index == kRequestCluster ? r.cluster : cluster_index)),
      idempotent(upstream::is_idempotent(method)),
      by_latency(cluster.balance.kind == upstream::BalanceKind::Ewma),
      worker_(worker),
      cluster_(cluster),
      max_tries_(rs.tries == 0 ? std::max<std::size_t>(1, cluster.endpoints.size()) : rs.tries),
      status_conditions_((rs.when & ~(upstream::kNextError | upstream::kNextTimeout)) != 0) {
  worker.retry_budget().on_request();
  if (rs.timeout.count() != 0) first_start_ = Clock::now();
  if (cluster.balance.kind == upstream::BalanceKind::Hash) {
    std::string scratch;
    hash_key_ = balance_hash_key(r, cluster.balance, scratch);
    in_.hash_key = hash_key_;
  }
  if (cluster.balance.affinity_cookie) {
    affinity_value_ = affinity_cookie_value(r, cluster.balance);
    in_.affinity_value = affinity_value_;
  }
}

upstream::Pick AttemptPlan::next() {
  in_.now = worker_.now();
  in_.tried = std::span<const std::size_t>(tried_.data(), tried_n_);
  const auto picked = upstream::pick(cluster_, balancer, in_);
  if (picked.index == upstream::kNoEndpoint) return picked;
  if (tried_n_ < tried_.size()) tried_[tried_n_++] = picked.index;
  ++tries_;
  return picked;
}

void AttemptPlan::report(std::size_t index, upstream::AttemptResult result) {
  if (upstream::report_attempt(cluster_, index, result, worker_.now()))
    worker_.stats().upstream_ejections.inc();
}

bool AttemptPlan::in_time() const {
  return rs.timeout.count() == 0 || Clock::now() - first_start_ < rs.timeout;
}

bool AttemptPlan::untried() const {
  return untried_left(cluster_, {tried_.data(), tried_n_}, tried_.size(), worker_.now());
}

bool AttemptPlan::status_retry_possible(bool has_body) const {
  return status_conditions_ && tries_ < max_tries_ && idempotent && !has_body &&
         worker_.retry_budget().tokens() >= 1.0 && in_time() && untried();
}

bool AttemptPlan::retry(bool allowed) {
  if (!allowed || tries_ >= max_tries_ || !in_time() || !untried()) return false;
  if (!worker_.retry_budget().try_spend()) {
    worker_.stats().upstream_retry_budget_exhausted.inc();
    return false;
  }
  worker_.stats().upstream_retries.inc();
  return true;
}

bool AttemptPlan::stale_retry(const upstream::AttemptEnd& end) {
  if (stale_used_ || rs.when == 0 || !upstream::stale_connection_retry(end)) return false;
  stale_used_ = true;
  --tries_;
  worker_.stats().upstream_retries.inc();
  return true;
}

}  // namespace phigate::proxy::detail
