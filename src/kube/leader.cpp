#include "phigate/kube/leader.hpp"

#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "phigate/core/log.hpp"
#include "status_impl.hpp"

namespace phigate::kube {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kStopped = "stopped";  // a shutdown, not a problem: logged as info

/// The fields of a Lease phigate reads (coordination.k8s.io/v1 LeaseSpec).
struct LeaseRecord {
  std::string resource_version;
  std::string holder;
  std::int64_t duration_seconds = 0;
  std::string acquire_time, renew_time;
  std::int64_t transitions = 0;

  /// What "the record changed" compares (client-go compares the whole LeaderElectionRecord; the
  /// resourceVersion is left out so a write that changed nothing we read does not count).
  std::string fingerprint() const {
    return holder + '\n' + std::to_string(duration_seconds) + '\n' + acquire_time + '\n' + renew_time + '\n' +
           std::to_string(transitions);
  }
};

std::optional<LeaseRecord> parse_lease(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) return std::nullopt;
  LeaseRecord r;
  std::string_view sv;
  if (doc["metadata"]["resourceVersion"].get_string().get(sv) != simdjson::SUCCESS) return std::nullopt;
  r.resource_version = std::string(sv);
  const auto spec = doc["spec"];
  // Every spec field is optional in the API (an empty Lease is valid): absent reads as empty/0.
  if (spec["holderIdentity"].get_string().get(sv) == simdjson::SUCCESS) r.holder = std::string(sv);
  if (spec["acquireTime"].get_string().get(sv) == simdjson::SUCCESS) r.acquire_time = std::string(sv);
  if (spec["renewTime"].get_string().get(sv) == simdjson::SUCCESS) r.renew_time = std::string(sv);
  std::int64_t n = 0;
  if (spec["leaseDurationSeconds"].get_int64().get(n) == simdjson::SUCCESS) r.duration_seconds = n;
  if (spec["leaseTransitions"].get_int64().get(n) == simdjson::SUCCESS) r.transitions = n;
  return r;
}

std::int64_t seconds_ceil(std::chrono::milliseconds d) {
  const auto s = (d.count() + 999) / 1000;
  return s < 1 ? 1 : s;
}

}  // namespace

struct LeaderElection::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::asio::io_context& io, Client& c, const config::KubernetesSpec& s, std::string n, std::string id,
       std::function<void(bool)> cb)
      : client(c), spec(s), ns(std::move(n)), identity(std::move(id)), on_change(std::move(cb)), timer(io) {}

  Client& client;
  config::KubernetesSpec spec;
  std::string ns, identity;
  std::function<void(bool)> on_change;
  net::asio::steady_timer timer;

  bool running = false;
  bool leading = false;
  bool in_flight = false;
  std::uint64_t generation = 0;  // bumped by stop(): late answers of an old run are ignored
  // A create/renew/take is on its way: the server may already have stored it under a new
  // resourceVersion, so a release now, with the one we last saw, would be refused (409) and the
  // successor would wait out the lease. stop() then leaves the release to that write's answer.
  bool writing = false;
  std::uint64_t writing_gen = 0;                   // the generation of that write
  std::optional<LeaseRecord> release_after_write;  // stop() during a write: what to release if it failed
  bool release_pending = false;
  // What we last read or wrote, and when (local steady time) it last changed.
  std::optional<LeaseRecord> observed;
  Clock::time_point observed_at{};
  // Send time of the last renew or take the server accepted: we lead until it + renew_deadline.
  Clock::time_point renewed_at{};
  std::string logged_holder = "\x01";  // last holder logged (impossible initial value)
  std::string logged_failure;          // last failure logged (one line per distinct failure)

  std::string path() const {
    return "/apis/coordination.k8s.io/v1/namespaces/" + url_escape(ns) + "/leases/" +
           url_escape(spec.lease_name);
  }

  std::chrono::milliseconds request_timeout() const {
    // A renew that takes longer than the deadline is useless: by then we have stepped down.
    return std::min(spec.request_timeout, spec.renew_deadline);
  }

  void set_leading(bool now_leading, const char* why) {
    if (leading == now_leading) return;
    leading = now_leading;
    if (now_leading) {
      PHI_LOG_INFO("leader election: {} now leads (Lease {}/{})", identity, ns, spec.lease_name);
    } else if (std::string_view(why) == kStopped) {
      PHI_LOG_INFO("leader election: {} stopped leading (Lease {}/{}): {}", identity, ns, spec.lease_name,
                   why);
    } else {
      PHI_LOG_WARN("leader election: {} stopped leading (Lease {}/{}): {}", identity, ns, spec.lease_name,
                   why);
    }
    if (on_change) on_change(now_leading);
  }

  void note_failure(const std::string& what) {
    if (what != logged_failure) {
      PHI_LOG_WARN("leader election: Lease {}/{}: {}", ns, spec.lease_name, what);
      logged_failure = what;
    }
  }

  void observe(const LeaseRecord& r, Clock::time_point now) {
    if (!observed || observed->fingerprint() != r.fingerprint()) observed_at = now;
    observed = r;
    if (r.holder != logged_holder) {
      PHI_LOG_INFO("leader election: Lease {}/{} held by {}", ns, spec.lease_name,
                   r.holder.empty() ? std::string("nobody") : r.holder);
      logged_holder = r.holder;
    }
  }

  // A leader that has not renewed within renew_deadline steps down before its Lease can expire
  // in another candidate's eyes (renew_deadline < lease_duration, checked by the loader).
  void check_deadline(Clock::time_point now) {
    if (leading && now - renewed_at >= spec.renew_deadline)
      set_leading(false, "could not renew within renew_deadline");
  }

  void schedule() {
    if (!running) return;
    // A leader also wakes at its renew deadline, so it steps down on time, not up to a retry
    // period late.
    auto at = Clock::now() + spec.retry_period;
    if (leading) at = std::min(at, renewed_at + spec.renew_deadline);
    timer.expires_at(at);
    timer.async_wait([weak = weak_from_this(), gen = generation](const net::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->generation != gen) return;
      self->tick();
    });
  }

  void tick() {
    const auto now = Clock::now();
    check_deadline(now);
    if (!in_flight) attempt();
    schedule();
  }

  // One round: GET, then create, renew, take or follow. One request at a time.
  void attempt() {
    in_flight = true;
    RequestOptions get;
    get.path = path();
    get.timeout = request_timeout();
    client.request(std::move(get), [weak = weak_from_this(), gen = generation](
                                       std::optional<Response> r, std::optional<TransportError> e) {
      auto self = weak.lock();
      if (!self || self->generation != gen) return;
      self->on_get(std::move(r), std::move(e));
    });
  }

  void finish() { in_flight = false; }

  void on_get(std::optional<Response> r, std::optional<TransportError> e) {
    const auto now = Clock::now();
    if (e || !r) {
      note_failure(e ? e->message : "no answer");
      check_deadline(now);
      return finish();
    }
    if (r->status == 404) return write("POST", LeaseRecord{}, /*take=*/true);
    if (r->status != 200) {
      note_failure("GET answered " + std::to_string(r->status));
      check_deadline(now);
      return finish();
    }
    auto rec = parse_lease(r->body);
    if (!rec) {
      note_failure("GET answered a body that is not a Lease");
      check_deadline(now);
      return finish();
    }
    observe(*rec, now);
    // The holder's own leaseDurationSeconds, clamped to a day: a tampered Lease must neither
    // overflow the multiplication nor keep every candidate waiting for ever.
    const auto duration =
        rec->duration_seconds > 0
            ? std::chrono::milliseconds(std::min<std::int64_t>(rec->duration_seconds, 86400) * 1000)
            : spec.lease_duration;
    switch (detail::decide_lease(rec->holder, identity, observed_at, duration, now)) {
      case detail::LeaseAction::Renew:
        return write("PUT", *rec, /*take=*/false);
      case detail::LeaseAction::Take:
        return write("PUT", *rec, /*take=*/true);
      case detail::LeaseAction::Follow:
        logged_failure.clear();
        set_leading(false, "another candidate holds the Lease");
        return finish();
    }
  }

  std::string lease_body(const LeaseRecord& from, const std::string& holder, const std::string& acquire,
                         const std::string& renew, std::int64_t duration_s, std::int64_t transitions) const {
    std::string b = "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":";
    b += detail::json_quote(spec.lease_name);
    b += ",\"namespace\":" + detail::json_quote(ns);
    // The resourceVersion read: the update succeeds only if nobody wrote in between (409 otherwise).
    if (!from.resource_version.empty())
      b += ",\"resourceVersion\":" + detail::json_quote(from.resource_version);
    b += "},\"spec\":{\"holderIdentity\":" + detail::json_quote(holder);
    b += ",\"leaseDurationSeconds\":" + std::to_string(duration_s);
    b += ",\"acquireTime\":" + detail::json_quote(acquire);
    b += ",\"renewTime\":" + detail::json_quote(renew);
    b += ",\"leaseTransitions\":" + std::to_string(transitions) + "}}";
    return b;
  }

  // POST (create) or PUT (renew or take) the Lease naming us.
  void write(const char* method, const LeaseRecord& from, bool take) {
    const auto sent = Clock::now();
    const auto wall = detail::format_time(std::chrono::system_clock::now());
    LeaseRecord next;
    next.holder = identity;
    next.duration_seconds = seconds_ceil(spec.lease_duration);
    next.renew_time = wall;
    if (take) {
      next.acquire_time = wall;
      // A first create starts at 0; taking over from someone else is one more transition.
      next.transitions =
          std::string_view(method) == "POST" ? 0 : from.transitions + (from.holder != identity ? 1 : 0);
    } else {
      next.acquire_time = from.acquire_time.empty() ? wall : from.acquire_time;
      next.transitions = from.transitions;
    }
    RequestOptions req;
    req.method = method;
    req.path = std::string_view(method) == "POST"
                   ? "/apis/coordination.k8s.io/v1/namespaces/" + url_escape(ns) + "/leases"
                   : path();
    req.body = lease_body(from, next.holder, next.acquire_time, next.renew_time, next.duration_seconds,
                          next.transitions);
    req.content_type = "application/json";
    req.timeout = request_timeout();
    writing = true;
    writing_gen = generation;
    client.request(std::move(req), [weak = weak_from_this(), gen = generation, sent](
                                       std::optional<Response> r, std::optional<TransportError> e) {
      auto self = weak.lock();
      if (!self) return;
      const bool last_write = self->writing_gen == gen;
      if (last_write) self->writing = false;
      if (self->generation != gen) {
        // Only the write stop() waited for releases (after a restart, an older one is no one's).
        if (last_write) self->after_stopped_write(r);
        return;
      }
      self->on_write(sent, std::move(r), std::move(e));
    });
  }

  void on_write(Clock::time_point sent, std::optional<Response> r, std::optional<TransportError> e) {
    const auto now = Clock::now();
    if (e || !r) {
      note_failure(e ? e->message : "no answer");
      check_deadline(now);
      return finish();
    }
    if (r->status == 200 || r->status == 201) {
      // The stored Lease as the server answers it (its new resourceVersion). A body that is not a
      // Lease is a broken server: not proof that we hold it.
      auto rec = parse_lease(r->body);
      if (!rec || rec->holder != identity) {
        note_failure("write answered a body that is not our Lease");
        check_deadline(now);
        return finish();
      }
      logged_failure.clear();
      observe(*rec, now);
      // Leadership counts from when the write was sent, not answered: a slow answer must not
      // stretch our term beyond what the others computed from the record.
      if (now - sent < spec.renew_deadline) {
        renewed_at = sent;
        set_leading(true, "");
      }
      return finish();
    }
    if (r->status == 409) {
      // Someone else wrote the Lease (or created it) since our read: not leader. The next round
      // reads the winner's record.
      note_failure("update conflicted (409): another candidate wrote the Lease");
      set_leading(false, "another candidate wrote the Lease (409 Conflict)");
      return finish();
    }
    note_failure(std::string(r->status == 401 || r->status == 403 ? "refused: " : "write answered ") +
                 std::to_string(r->status));
    check_deadline(now);
    finish();
  }

  /// stop(): releases the Lease we lead by, now or (a write on its way) once that write answers.
  void release() {
    // Only a record naming us (a leader that just read an empty holder has not written yet).
    const bool ours = leading && observed && observed->holder == identity;
    if (writing) {
      release_pending = true;
      release_after_write = ours ? observed : std::nullopt;
      return;
    }
    if (ours) send_release(*observed);
  }

  /// The answer of a write sent before stop(): the Lease it stored is ours to release (with its
  /// new resourceVersion); a write that failed left the record we led by, if any.
  void after_stopped_write(const std::optional<Response>& r) {
    if (!release_pending) return;
    release_pending = false;
    auto led = std::move(release_after_write);
    release_after_write.reset();
    if (r && (r->status == 200 || r->status == 201)) {
      auto rec = parse_lease(r->body);
      if (rec && rec->holder == identity) return send_release(*rec);
    }
    if (led) send_release(*led);
  }

  void send_release(const LeaseRecord& held) {
    // Only with the resourceVersion of our own last write: an unconditional update could
    // overwrite a successor's Lease.
    if (held.resource_version.empty()) return;
    // client-go ReleaseOnCancel: empty holder, a 1 s duration and renewTime now, so the next
    // candidate takes it on its next round instead of waiting out the lease.
    const auto wall = detail::format_time(std::chrono::system_clock::now());
    RequestOptions req;
    req.method = "PUT";
    req.path = path();
    req.body = lease_body(held, "", wall, wall, 1, held.transitions);
    req.content_type = "application/json";
    req.timeout = request_timeout();
    client.request(std::move(req), [ns = ns, name = spec.lease_name](std::optional<Response> r,
                                                                     std::optional<TransportError> e) {
      if (r && r->status == 200) {
        PHI_LOG_INFO("leader election: released Lease {}/{}", ns, name);
      } else {
        PHI_LOG_WARN("leader election: releasing Lease {}/{} failed ({}); it expires by itself", ns, name,
                     e ? e->message : "status " + std::to_string(r ? r->status : 0));
      }
    });
  }
};

LeaderElection::LeaderElection(net::asio::io_context& io, Client& client, const config::KubernetesSpec& spec,
                               std::string ns, std::string identity,
                               std::function<void(bool leading)> on_change)
    : impl_(std::make_shared<Impl>(io, client, spec, std::move(ns), std::move(identity),
                                   std::move(on_change))) {}

LeaderElection::~LeaderElection() {
  impl_->running = false;
  ++impl_->generation;
  impl_->timer.cancel();
}

void LeaderElection::start() {
  if (impl_->running) return;
  impl_->running = true;
  impl_->in_flight = false;
  impl_->release_pending = false;  // a restart leads anew: an old run's write no longer releases
  impl_->release_after_write.reset();
  impl_->attempt();
  impl_->schedule();
}

void LeaderElection::stop() {
  auto& i = *impl_;
  if (!i.running) return;
  i.running = false;
  ++i.generation;  // answers still in flight are dropped
  i.timer.cancel();
  i.in_flight = false;
  i.release();
  i.observed.reset();
  i.set_leading(false, kStopped);
}

bool LeaderElection::leading() const noexcept {
  return impl_->leading && std::chrono::steady_clock::now() - impl_->renewed_at < impl_->spec.renew_deadline;
}

const std::string& LeaderElection::identity() const noexcept {
  return impl_->identity;
}

std::string default_identity(const Getenv& env) {
  std::string base;
  if (env) {
    if (auto pod = env("POD_NAME"); pod && !pod->empty()) base = *pod;
  }
  if (base.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) base = host;
  }
  if (base.empty()) base = "phigate";
  return base + "_" + std::to_string(static_cast<long long>(getpid()));
}

}  // namespace phigate::kube
