// Ownership: what one daemon holds on a shared database, through the store's role leases
// (Store::TakeLease): a lease of its own ("daemon:OWNER", which tells others it is alive)
// and one per spool ("spool:ROOT"), so that two daemons given the same spool (on shared
// storage) never run it at once: the second stands by until the first's lease runs out.
//
// The holder renews every lease a third of its length. When it finds a lease taken over
// (it was paused, or cut off from the database, past the lease's end) the daemon must stop
// at once (fail-stop, as after a kill -9, whose recovery is tested). While the database
// cannot be reached the daemon stays up (it cannot commit anything meanwhile) and renews
// as soon as it answers. Daemons sharing a database need clocks within a few seconds of each
// other (NTP).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/store.h"

namespace sluice {

class Ownership {
 public:
  // `owner`: this process's name (host:pid:random); `lease_s`: how long a lease lasts.
  Ownership(Store* store, Clock* clock, std::string owner, double lease_s);

  const std::string& owner() const { return owner_; }
  // "daemon:OWNER": held by every live daemon under its own name.
  static std::string DaemonLease(const std::string& owner);
  static std::string SpoolLease(const std::string& root);

  // Takes what it can of `names` (with its own daemon lease); true once all are held. Says
  // once per name who holds one it cannot take, and when it takes one over.
  Result<bool> TryAcquire(const std::vector<std::string>& names);
  // TryAcquire of one role: whether this process holds it now (false when the database
  // cannot say).
  bool TryTake(const std::string& name) {
    auto held = TryAcquire({name});
    return held.ok() && *held;
  }
  // Renews what it holds when due. FailedPrecondition naming the lease when one was taken
  // over: stop at once. A role any process may do (the pruner's, the reconciler's: done twice
  // for a moment is harmless) is only given up when taken over, and stood by for again: after
  // a database outage longer than the lease, the first process back takes over the roles of
  // those not back yet, and they must not stop for it.
  Status Renew();
  // Whether this process holds `name` now (as far as the last renewal knows).
  bool Holds(const std::string& name) const { return held_.count(name) > 0; }
  // The epoch of a lease held now (0 when it is not held).
  int64_t EpochOf(const std::string& name) const {
    auto it = held_.find(name);
    return it == held_.end() ? 0 : it->second.epoch;
  }
  // The lease of the process that prunes old events on a shared database (EventRetention).
  static constexpr char kPrunerLease[] = "pruner";
  // The lease of the process that publishes again what the broker lost (Reconciler).
  static constexpr char kReconcilerLease[] = "reconciler";
  // Gives everything up (a clean stop: the standby takes over at once).
  void Release();

  // Whether the daemon `owner` holds its daemon lease now (it is alive), by `leases`.
  static bool Alive(const std::vector<Lease>& leases, const std::string& owner, int64_t now);

 private:
  struct Held {
    int64_t epoch = 0;
    int64_t renewed = 0;  // monotonic micros of the last renewal
  };
  Store* store_;
  Clock* clock_;
  std::string owner_;
  int64_t lease_us_;
  std::map<std::string, Held> held_;
  std::map<std::string, std::string> said_;  // name -> the holder we said stands in the way
  int64_t last_renew_ = 0;
  bool renew_failing_ = false;  // the last renewal could not reach the database
  bool lapse_said_ = false;
  bool pruned_ = false;
};

}  // namespace sluice
