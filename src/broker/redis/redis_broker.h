// RedisBroker: the distributed Broker on Redis Streams.
//
// Keys, under a prefix (default "sluice"):
//   P:config                     hash: shards (every process must agree; checked at open)
//   P:queues                     set of the queues tickets were pushed to
//   P:ready:Q:hi:N, P:ready:Q:lo:N  a stream per queue, priority class and shard; a ticket's
//                                shard is a stable hash of its job id (the same on every
//                                process); read through the consumer group "sluice"
//   P:delayed:Q                  sorted set of tickets not due yet, by run_at; a script
//                                moves the due ones into their streams atomically
//   P:dead:Q                     dead letters: tickets handed out max_deliveries times
//                                whose lease lapsed again (job id, deliveries, stream, entry)
//
// Priority: tickets with priority > 0 go to the "hi" streams, read before the "lo" ones;
// within a class, each shard is first in, first out, and one read (one entry per stream)
// is handed out oldest first; there is no finer order across shards.
//
// Leases are the consumer group's pending entries: an entry idle past lease_ms (its holder
// neither acknowledged nor extended it) is taken over with XAUTOCLAIM by the next Pop of any
// process, its delivery count one higher. Ack and Extend act only while this consumer still
// owns the entry (a script checks), so a paused holder that wakes up cannot take back or
// acknowledge an entry another consumer took over. What a ticket's job may then do is for
// the store to fence; the broker only carries ids.
//
// Redis down or restarted empty: Push drops the ticket (counted, one log line per outage;
// the store still holds the job and publishes it again), Pop waits and reconnects at most
// every 500 ms (through the sentinels, for redis+sentinel://), consumer groups are made
// again when they are gone.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/event_fanout.h"
#include "broker/redis/redis_conn.h"
#include "core/clock.h"
#include "core/status.h"

namespace sluice {

struct RedisBrokerOptions : BrokerOptions {
  RedisBrokerOptions() { lease_ms = 15'000; }
  std::string url;                // see redis::ParseUrl
  int shards = 8;                 // streams per queue and class
  std::string prefix = "sluice";  // of every key
  std::string consumer;           // this process's name in the group; default host:pid:random
  int timeout_ms = 5'000;         // connect and command timeout
  // A watcher (`sluice check`): writes nothing; takes the shard count Redis records (its
  // `shards` when none is recorded yet) instead of checking its own against it.
  bool observe = false;
};

// One stream's state, for /metrics and `sluice stats`.
struct StreamStats {
  std::string queue;
  bool high = false;
  int shard = 0;
  int64_t length = 0;             // entries held (waiting and pending)
  int64_t pending = 0;            // handed out, not acknowledged
  int64_t oldest_pending_ms = 0;  // idle time of the oldest pending entry
  int64_t consumers = 0;
};

struct BrokerCounters {
  uint64_t push_failures = 0;  // tickets Redis did not take (the store publishes them again)
  uint64_t reclaims = 0;       // entries taken over from a consumer whose lease lapsed
  uint64_t dead_letters = 0;   // entries this process moved to a dead-letter stream
};

class RedisBroker : public Broker, public EventFanOut {
 public:
  // Connects, checks the shard count against the one recorded in Redis (FailedPrecondition
  // on a mismatch), and makes the consumer groups of `options.queues`.
  static Result<std::unique_ptr<RedisBroker>> Open(const RedisBrokerOptions& options, Clock* clock);
  ~RedisBroker() override;

  void Push(const Ticket& t) override;
  std::optional<Ticket> Pop(std::chrono::milliseconds wait) override;
  void Ack(const Ticket& t) override;
  void AckAll(const std::vector<Ticket>& tickets) override;
  void Extend(const Ticket& t) override;
  void Close() override;
  size_t ReadyCount() const override;
  size_t DelayedCount() const override;
  size_t PendingCount() const override;
  size_t DeadCount() const override;
  size_t HeldCount() const override;  // one pass over the streams, not two

  // Live events (EventFanOut), on the stream PREFIX:events, trimmed to about the newest
  // 100,000.
  void PublishEvents(const std::vector<Event>& events) override;
  Result<std::vector<Event>> ReadEvents(int block_ms) override;

  // Every stream of the served queues; Unavailable when Redis cannot be asked.
  Result<std::vector<StreamStats>> Stats() const;
  BrokerCounters counters() const;
  // The job ids of every ticket Redis holds, in any queue: waiting, handed out and not
  // acknowledged, or delayed (for the reconciler). Unavailable when Redis cannot be asked.
  Result<std::set<int64_t>> HeldJobIds() const;
  // "host H port P db N" (never a password).
  std::string server() const;
  // The shard of a job id: a stable hash, the same on every process and release.
  static int ShardOf(int64_t job_id, int shards);

 private:
  RedisBrokerOptions options_;
  RedisBroker(RedisBrokerOptions options, redis::Endpoint endpoint, Clock* clock);

  struct Link;  // a connection with its reconnection state
  std::string StreamKey(const std::string& queue, bool high, int shard) const;
  std::vector<std::string> Queues(Link* link);
  Status EnsureGroups(Link* link, const std::string& queue);
  Status Maintain(Link* link);
  Status Promote(Link* link, const std::string& queue);
  Status Reclaim(Link* link, const std::string& key);
  Status KeepBuffered(Link* link);
  Status Read(Link* link, int block_ms);
  // One command on `link`, connecting first when needed (at most every 500 ms, unless
  // `now_or_never`); Run retries once at once when the connection broke under it.
  Result<redis::Reply> Run(Link* link, const std::vector<std::string>& argv) const;
  // Several commands in one round trip (a pipeline), with Run's reconnection.
  Result<std::vector<redis::Reply>> RunAll(
      Link* link, const std::vector<std::vector<std::string>>& commands) const;
  Result<std::vector<redis::Reply>> RunOnce(Link* link,
                                            const std::vector<std::vector<std::string>>& commands,
                                            bool now_or_never) const;
  std::optional<Ticket> TakeBuffered();
  // cmd_mu_ held: the queues this broker serves (its options', or all pushed to so far).
  Result<std::vector<std::string>> ServedQueues() const;
  // The sum of COMMAND over PREFIX:KIND:QUEUE for every served queue (0 when Redis is away).
  size_t SumOverQueues(const char* command, const std::string& kind) const;
  // Entries read ahead into this process and not handed out yet: ready, to the counts,
  // though Redis counts them pending.
  int64_t BufferedCount() const;
  void OutageSeen(const Status& why) const;
  void BackSeen() const;

  redis::Endpoint endpoint_;
  Clock* clock_;
  std::unique_ptr<Link> cmd_;     // Push, Ack, Extend, counts
  std::unique_ptr<Link> read_;    // Pop's reads and upkeep (one reader at a time)
  std::unique_ptr<Link> events_;  // ReadEvents (one reader at a time, under events_mu_)
  std::mutex events_mu_;
  std::string events_cursor_;  // the last entry ReadEvents saw ("": not positioned yet)
  mutable std::mutex cmd_mu_;
  std::mutex read_mu_;

  mutable std::mutex buf_mu_;
  std::condition_variable buf_cv_;
  struct Buffered {
    Ticket ticket;
    int64_t read_at = 0;  // monotonic micros
  };
  std::deque<Buffered> buffer_;  // read from Redis, not handed to a worker yet
  bool closed_ = false;

  // Upkeep state (under read_mu_).
  std::set<std::string> grouped_;  // queues whose consumer groups exist
  std::vector<std::string> queues_;
  int64_t queues_at_ = 0, promoted_at_ = 0, reclaimed_at_ = 0, next_due_ = 0;
  std::map<std::string, std::string> cursors_;  // XAUTOCLAIM position per stream

  // Queues added to P:queues -> when (monotonic micros; under cmd_mu_).
  std::map<std::string, int64_t> registered_;
  mutable std::mutex outage_mu_;
  mutable bool outage_ = false;
  mutable int64_t outage_since_ = 0;
  mutable std::string master_at_;  // through sentinels: where the master was last found
  struct {
    std::atomic<uint64_t> push_failures{0}, reclaims{0}, dead_letters{0};
  } mutable counters_;
};

}  // namespace sluice
