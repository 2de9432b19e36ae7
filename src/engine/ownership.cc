// Ownership: see ownership.h.
#include "engine/ownership.h"

#include "core/spdlog.h"

namespace sluice {

Ownership::Ownership(Store* store, Clock* clock, std::string owner, double lease_s)
    : store_(store), clock_(clock), owner_(std::move(owner)), lease_us_(SecondsToMicros(lease_s)) {}

std::string Ownership::DaemonLease(const std::string& owner) { return "daemon:" + owner; }
std::string Ownership::SpoolLease(const std::string& root) { return "spool:" + root; }

Result<bool> Ownership::TryAcquire(const std::vector<std::string>& names) {
  if (!pruned_) {
    // The leases of daemons gone for a day are only clutter (`sluice stats`).
    auto gone = store_->PruneLeases("daemon:", SatAdd(clock_->NowMicros(), -86'400'000'000));
    if (!gone.ok()) return gone.status();
    pruned_ = true;
  }
  std::vector<std::string> all = {DaemonLease(owner_)};
  all.insert(all.end(), names.begin(), names.end());
  bool every = true;
  for (const std::string& name : all) {
    if (held_.count(name)) continue;
    int64_t now = clock_->NowMicros();
    auto epoch = store_->TakeLease(name, owner_, SatAdd(now, lease_us_), now);
    if (!epoch.ok()) return epoch.status();
    if (!epoch->has_value()) {
      every = false;
      auto leases = store_->ListLeases();
      std::string holder = "another daemon";
      if (leases.ok()) {
        for (const Lease& l : *leases) {
          if (l.name == name) holder = l.owner;
        }
      }
      if (said_[name] != holder) {
        said_[name] = holder;
        spdlog::info("standing by: {} is held by {}; taking it over when its lease ends", name,
                     holder);
      }
      continue;
    }
    held_[name] = {**epoch, clock_->MonotonicMicros()};
    if (!said_[name].empty()) {  // it stood by for it
      spdlog::info("took over {} (epoch {})", name, **epoch);
    }
  }
  return every;
}

namespace {

bool GivenUpWhenTaken(const std::string& name) {
  return name == Ownership::kPrunerLease || name == Ownership::kReconcilerLease;
}

}  // namespace

Status Ownership::Renew() {
  int64_t mono = clock_->MonotonicMicros();
  // Due every third of the lease; while renewing fails (the database is away), every call,
  // so that a takeover is learnt as soon as the database answers again.
  if (!renew_failing_ && mono - last_renew_ < lease_us_ / 3) return Status::Ok();
  last_renew_ = mono;
  bool failing = false;
  std::vector<std::string> lost;  // roles taken over, given up below
  for (auto& [name, h] : held_) {
    int64_t now = clock_->NowMicros();
    auto epoch = store_->TakeLease(name, owner_, SatAdd(now, lease_us_), now);
    if (!epoch.ok()) {
      if (!renew_failing_) {
        spdlog::warn("cannot renew {}: {}; trying until the database answers", name,
                     epoch.status().message());
      }
      failing = true;
      continue;
    }
    if (!epoch->has_value() || **epoch != h.epoch) {
      if (GivenUpWhenTaken(name)) {
        lost.push_back(name);
        continue;
      }
      return Status::FailedPrecondition(name + " was taken over by another daemon");
    }
    h.renewed = clock_->MonotonicMicros();
  }
  for (const std::string& name : lost) {
    held_.erase(name);
    said_.erase(name);
    spdlog::info("{} was taken over by another daemon; standing by for it again", name);
  }
  if (failing) {
    for (const auto& [name, h] : held_) {
      if (!lapse_said_ && clock_->MonotonicMicros() - h.renewed > lease_us_) {
        // The database is away for everyone or for this daemon only: in the first case
        // nobody takes anything over; in the second a standby may, and this daemon stops
        // as soon as the database tells it so. It cannot commit anything meanwhile.
        spdlog::warn(
            "{} ran out unrenewed; a standby may take it over, and this daemon stops "
            "when the database answers and says so",
            name);
        lapse_said_ = true;
      }
    }
  } else if (renew_failing_) {
    spdlog::info("leases renewed again");
    lapse_said_ = false;
  }
  renew_failing_ = failing;
  return Status::Ok();
}

void Ownership::Release() {
  for (const auto& [name, h] : held_) {
    Status st = store_->ReleaseLease(name, owner_, h.epoch);
    if (!st.ok()) spdlog::warn("cannot release {}: {}", name, st.message());
  }
  held_.clear();
}

bool Ownership::Alive(const std::vector<Lease>& leases, const std::string& owner, int64_t now) {
  for (const Lease& l : leases) {
    if (l.name == DaemonLease(owner)) return l.owner == owner && l.until >= now;
  }
  return false;
}

}  // namespace sluice
