// RedisBroker: see redis_broker.h.
#include "broker/redis/redis_broker.h"

#include <algorithm>
#include <cstdlib>

#include "core/identity.h"
#include "core/spdlog.h"

namespace sluice {
namespace {

constexpr char kGroup[] = "sluice";
constexpr int64_t kReconnectUs = 500'000;
constexpr int64_t kQueuesEveryUs = 1'000'000;
constexpr int64_t kPromoteEveryUs = 100'000;
constexpr int kMaxBlockMs = 100;  // Close() and delayed tickets are seen at least this often

// Moves due members of a delayed set (KEYS[1]) into their streams; ARGV[1] is now (micros).
// Members are "JOB|PRIO|ORDER|QLEN|QUEUE|STREAM", QLEN the queue's length in bytes (a queue
// name may hold '|'). Returns {moved, next due score or -1}.
constexpr char kPromote[] = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
for _, m in ipairs(due) do
  local job, prio, ord, qlen, rest = string.match(m, '^(-?%d+)|(-?%d+)|(-?%d+)|(%d+)|(.*)$')
  if job then
    local n = tonumber(qlen)
    local queue = string.sub(rest, 1, n)
    local stream = string.sub(rest, n + 2)
    redis.call('XADD', stream, '*', 'job', job, 'prio', prio, 'order', ord, 'queue', queue)
  end
  redis.call('ZREM', KEYS[1], m)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next == 0 then return {#due, -1} end
return {#due, next[2]}
)lua";

// KEYS[1] stream; ARGV: group, consumer, entry id, then "ack" or "extend". Acts only when
// the consumer still owns the pending entry. Returns 1 when it acted.
constexpr char kOwned[] = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
if ARGV[4] == 'ack' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  redis.call('XDEL', KEYS[1], ARGV[3])
else
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
end
return 1
)lua";

// "STREAM\nENTRY" <-> the delivery handle.
std::string Handle(const std::string& key, const std::string& id) { return key + "\n" + id; }
bool SplitHandle(const std::string& h, std::string* key, std::string* id) {
  size_t nl = h.rfind('\n');
  if (nl == std::string::npos) return false;
  *key = h.substr(0, nl);
  *id = h.substr(nl + 1);
  return true;
}

// A ticket from a stream entry [id, [field, value, …]].
std::optional<Ticket> FromEntry(const std::string& key, const redis::Reply& entry) {
  if (entry.elements.size() < 2) return std::nullopt;
  const redis::Reply& fields = entry.elements[1];
  Ticket t;
  bool has_job = false;
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string& f = fields.elements[i].str;
    const redis::Reply& v = fields.elements[i + 1];
    if (f == "job") {
      t.job_id = v.Int(0);
      has_job = t.job_id > 0;
    } else if (f == "prio") {
      t.priority = static_cast<int>(v.Int(0));
    } else if (f == "order") {
      t.order = v.Int(0);
    } else if (f == "queue") {
      t.queue = v.str;
    }
  }
  if (!has_job) return std::nullopt;
  t.delivery = Handle(key, entry.elements[0].str);
  t.deliveries = 1;
  return t;
}

}  // namespace

struct RedisBroker::Link {
  redis::Conn conn;
  int64_t tried_at = INT64_MIN / 2;
};

int RedisBroker::ShardOf(int64_t job_id, int shards) {
  // splitmix64's finaliser: ids that differ in one bit land anywhere.
  uint64_t z = static_cast<uint64_t>(job_id) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<int>(z % static_cast<uint64_t>(std::max(1, shards)));
}

RedisBroker::RedisBroker(RedisBrokerOptions options, redis::Endpoint endpoint, Clock* clock)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      clock_(clock),
      cmd_(std::make_unique<Link>()),
      read_(std::make_unique<Link>()),
      events_(std::make_unique<Link>()) {
  if (options_.consumer.empty()) options_.consumer = UniqueProcessName();
}

RedisBroker::~RedisBroker() = default;

Result<std::unique_ptr<RedisBroker>> RedisBroker::Open(const RedisBrokerOptions& options,
                                                       Clock* clock) {
  if (options.shards < 1 || options.shards > 1024) {
    return Status::InvalidArgument("--shards must be from 1 to 1024");
  }
  if (options.lease_ms <= 0) return Status::InvalidArgument("the broker's lease must be > 0");
  auto endpoint = redis::ParseUrl(options.url);
  if (!endpoint.ok()) return endpoint.status();
  std::unique_ptr<RedisBroker> b(new RedisBroker(options, *endpoint, clock));
  std::string shards = std::to_string(options.shards);
  std::string config = options.prefix + ":config";
  // A first failure is the caller's to report (exit non-zero at start), not an outage.
  if (options.observe) {
    auto got = b->Run(b->cmd_.get(), {"HGET", config, "shards"});
    if (!got.ok()) return got.status();
    int recorded = static_cast<int>(got->Int(0));
    if (recorded >= 1 && recorded <= 1024) b->options_.shards = recorded;
    return b;
  }
  auto set = b->Run(b->cmd_.get(), {"HSETNX", config, "shards", shards});
  if (!set.ok()) return set.status();
  auto got = b->Run(b->cmd_.get(), {"HGET", config, "shards"});
  if (!got.ok()) return got.status();
  if (got->str != shards) {
    return Status::FailedPrecondition(
        "the broker at " + redis::Describe(*endpoint) + " holds queues in " + got->str +
        " shards and this process was given --shards " + shards +
        ": give every process the same --shards (or use another --broker-prefix)");
  }
  std::lock_guard<std::mutex> lock(b->read_mu_);
  for (const std::string& q : options.queues) {
    SLUICE_RETURN_IF_ERROR(b->EnsureGroups(b->read_.get(), q));
  }
  return b;
}

std::string RedisBroker::server() const { return redis::Describe(endpoint_); }

std::string RedisBroker::StreamKey(const std::string& queue, bool high, int shard) const {
  return options_.prefix + ":ready:" + queue + (high ? ":hi:" : ":lo:") + std::to_string(shard);
}

void RedisBroker::OutageSeen(const Status& why) const {
  std::lock_guard<std::mutex> lock(outage_mu_);
  if (outage_) return;
  outage_ = true;
  outage_since_ = clock_->MonotonicMicros();
  spdlog::warn("Redis {} is unreachable; jobs wait in the store until it is back ({})",
               redis::Describe(endpoint_), why.message());
}

void RedisBroker::BackSeen() const {
  std::lock_guard<std::mutex> lock(outage_mu_);
  if (!outage_) return;
  outage_ = false;
  spdlog::info("Redis {} is back after {:.1f} s", redis::Describe(endpoint_),
               (clock_->MonotonicMicros() - outage_since_) / 1e6);
}

Result<redis::Reply> RedisBroker::Run(Link* link, const std::vector<std::string>& argv) const {
  auto r = RunAll(link, {argv});
  if (!r.ok()) return r.status();
  return std::move(r->front());
}

Result<std::vector<redis::Reply>> RedisBroker::RunAll(
    Link* link, const std::vector<std::vector<std::string>>& commands) const {
  bool was_connected = link->conn.connected();
  auto r = RunOnce(link, commands, false);
  if (!r.ok() && r.status().code() == Code::kUnavailable && was_connected) {
    // The connection broke under these commands (a restart, a failover): connect again at
    // once and try once more. A command that did run before the break may run twice; tickets
    // are idempotent (a job is claimed once, whatever carries its id).
    r = RunOnce(link, commands, true);
  }
  if (!r.ok() && r.status().code() == Code::kUnavailable) {
    OutageSeen(r.status());
  } else {
    BackSeen();
  }
  return r;
}

Result<std::vector<redis::Reply>> RedisBroker::RunOnce(
    Link* link, const std::vector<std::vector<std::string>>& commands, bool now_or_never) const {
  if (!link->conn.connected()) {
    int64_t now = clock_->MonotonicMicros();
    if (!now_or_never && now - link->tried_at < kReconnectUs) {
      return Status::Unavailable("Redis " + redis::Describe(endpoint_) + " is unreachable");
    }
    link->tried_at = now;
    redis::Endpoint where = endpoint_;
    if (!endpoint_.master_name.empty()) {
      auto master = redis::Conn::FindMaster(endpoint_, options_.timeout_ms);
      if (!master.ok()) return master.status();
      where = *master;
      std::string at = where.host + ":" + std::to_string(where.port);
      std::lock_guard<std::mutex> lock(outage_mu_);
      if (at != master_at_) {
        spdlog::info("Redis master {} is at {}{}", endpoint_.master_name, at,
                     master_at_.empty() ? "" : " (was " + master_at_ + ")");
        master_at_ = at;
      }
    }
    auto c = redis::Conn::Connect(where, options_.timeout_ms);
    if (!c.ok()) return c.status();
    link->conn = std::move(*c);
  }
  Result<std::vector<redis::Reply>> r = Status::Ok();
  if (commands.size() == 1) {
    auto one = link->conn.Command(commands.front());
    if (one.ok()) {
      r = std::vector<redis::Reply>{std::move(*one)};
    } else {
      r = one.status();
    }
  } else {
    r = link->conn.Pipeline(commands);
  }
  if (!r.ok() && r.status().code() == Code::kUnavailable) {
    // Lost, or a replica that became read-only after a failover: find the master again.
    link->conn = redis::Conn();
  }
  return r;
}

void RedisBroker::Push(const Ticket& t) {
  std::string queue = t.queue;
  std::string key = StreamKey(queue, t.priority > 0, ShardOf(t.job_id, options_.shards));
  std::lock_guard<std::mutex> lock(cmd_mu_);
  Status st;
  // Said again every second: a Redis restarted empty (or FLUSHALL) forgets the queues, and
  // readers find streams only through this set.
  int64_t mono = clock_->MonotonicMicros();
  auto said = registered_.find(queue);
  if (said == registered_.end() || mono - said->second >= kQueuesEveryUs) {
    auto r = Run(cmd_.get(), {"SADD", options_.prefix + ":queues", queue});
    if (r.ok()) registered_[queue] = mono;
    st = r.status();
  }
  if (st.ok()) {
    std::string job = std::to_string(t.job_id), prio = std::to_string(t.priority),
                order = std::to_string(t.order);
    Result<redis::Reply> r =
        t.run_at > clock_->NowMicros()
            ? Run(cmd_.get(),
                  {"ZADD", options_.prefix + ":delayed:" + queue, std::to_string(t.run_at),
                   job + "|" + prio + "|" + order + "|" + std::to_string(queue.size()) + "|" +
                       queue + "|" + key})
            : Run(cmd_.get(),
                  {"XADD", key, "*", "job", job, "prio", prio, "order", order, "queue", queue});
    st = r.status();
  }
  if (!st.ok()) {
    counters_.push_failures++;
    spdlog::debug("job {}: not published to Redis ({}); the store publishes it again", t.job_id,
                  st.message());
    return;
  }
  buf_cv_.notify_one();
}

std::vector<std::string> RedisBroker::Queues(Link* link) {
  if (!options_.queues.empty()) return options_.queues;
  int64_t now = clock_->MonotonicMicros();
  if (now - queues_at_ >= kQueuesEveryUs || queues_.empty()) {
    auto r = Run(link, {"SMEMBERS", options_.prefix + ":queues"});
    if (r.ok()) {
      queues_at_ = now;
      queues_.clear();
      for (const auto& e : r->elements) {
        if (!options_.serves || options_.serves(e.str)) queues_.push_back(e.str);
      }
      std::sort(queues_.begin(), queues_.end());
    }
  }
  return queues_;
}

Status RedisBroker::EnsureGroups(Link* link, const std::string& queue) {
  if (grouped_.count(queue)) return Status::Ok();
  for (int high = 1; high >= 0; --high) {
    for (int s = 0; s < options_.shards; ++s) {
      auto r = Run(link, {"XGROUP", "CREATE", StreamKey(queue, high, s), kGroup, "0", "MKSTREAM"});
      if (!r.ok() && r.status().message().find("BUSYGROUP") == std::string::npos) {
        return r.status();
      }
    }
  }
  grouped_.insert(queue);
  return Status::Ok();
}

Status RedisBroker::Promote(Link* link, const std::string& queue) {
  auto r = Run(link, {"EVAL", kPromote, "1", options_.prefix + ":delayed:" + queue,
                      std::to_string(clock_->NowMicros())});
  if (!r.ok()) return r.status();
  if (r->elements.size() == 2) {
    int64_t next = r->elements[1].Int(-1);
    if (next >= 0 && (next_due_ == 0 || next < next_due_)) next_due_ = next;
  }
  return Status::Ok();
}

Status RedisBroker::Reclaim(Link* link, const std::string& key) {
  std::string& cursor = cursors_[key];
  if (cursor.empty()) cursor = "0-0";
  auto r = Run(link, {"XAUTOCLAIM", key, kGroup, options_.consumer,
                      std::to_string(options_.lease_ms), cursor, "COUNT", "16"});
  if (!r.ok()) return r.status();
  if (r->elements.size() < 2) return Status::Ok();
  cursor = r->elements[0].str;
  for (const redis::Reply& entry : r->elements[1].elements) {
    if (entry.elements.size() < 2 || entry.elements[1].nil()) continue;
    std::optional<Ticket> t = FromEntry(key, entry);
    const std::string& id = entry.elements[0].str;
    auto pending = Run(link, {"XPENDING", key, kGroup, id, id, "1"});
    int64_t count = 1;
    if (pending.ok() && !pending->elements.empty() && pending->elements[0].elements.size() == 4) {
      count = pending->elements[0].elements[3].Int(1);
    }
    counters_.reclaims++;
    if (!t) {  // not one of ours: drop it
      (void)Run(link, {"XACK", key, kGroup, id});
      (void)Run(link, {"XDEL", key, id});
      continue;
    }
    if (count > options_.max_deliveries) {
      t->deliveries = static_cast<int>(count - 1);
      t->dead = true;
      std::string dead = options_.prefix + ":dead:" + t->queue;
      auto moved = Run(link, {"XADD", dead, "*", "job", std::to_string(t->job_id), "deliveries",
                              std::to_string(t->deliveries), "stream", key, "entry", id});
      if (!moved.ok()) return moved.status();
      (void)Run(link, {"XACK", key, kGroup, id});
      (void)Run(link, {"XDEL", key, id});
      counters_.dead_letters++;
    } else {
      t->deliveries = static_cast<int>(count);
    }
    std::lock_guard<std::mutex> lock(buf_mu_);
    buffer_.push_front({*t, clock_->MonotonicMicros()});
  }
  return Status::Ok();
}

// Entries read into this process's buffer are still ours in Redis: their idle time starts
// again before it reaches the lease, so no other process takes them over meanwhile.
Status RedisBroker::KeepBuffered(Link* link) {
  std::vector<std::string> handles;
  int64_t now = clock_->MonotonicMicros();
  {
    std::lock_guard<std::mutex> lock(buf_mu_);
    for (Buffered& b : buffer_) {
      if (b.ticket.dead || now - b.read_at < options_.lease_ms * 1000LL / 3) continue;
      b.read_at = now;
      handles.push_back(b.ticket.delivery);
    }
  }
  for (const std::string& h : handles) {
    std::string key, id;
    if (!SplitHandle(h, &key, &id)) continue;
    auto r = Run(link, {"EVAL", kOwned, "1", key, kGroup, options_.consumer, id, "extend"});
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status RedisBroker::Maintain(Link* link) {
  int64_t mono = clock_->MonotonicMicros();
  std::vector<std::string> queues = Queues(link);
  for (const std::string& q : queues) SLUICE_RETURN_IF_ERROR(EnsureGroups(link, q));
  bool promote =
      mono - promoted_at_ >= kPromoteEveryUs || (next_due_ > 0 && clock_->NowMicros() >= next_due_);
  if (promote) {
    promoted_at_ = mono;
    next_due_ = 0;
    for (const std::string& q : queues) SLUICE_RETURN_IF_ERROR(Promote(link, q));
  }
  if (mono - reclaimed_at_ >= std::max<int64_t>(options_.lease_ms * 1000LL / 4, 20'000)) {
    reclaimed_at_ = mono;
    for (const std::string& q : queues) {
      for (int high = 1; high >= 0; --high) {
        for (int s = 0; s < options_.shards; ++s) {
          SLUICE_RETURN_IF_ERROR(Reclaim(link, StreamKey(q, high, s)));
        }
      }
    }
    SLUICE_RETURN_IF_ERROR(KeepBuffered(link));
  }
  return Status::Ok();
}

Status RedisBroker::Read(Link* link, int block_ms) {
  std::vector<std::string> queues = Queues(link);
  if (queues.empty()) {
    if (block_ms > 0) {
      std::unique_lock<std::mutex> lock(buf_mu_);
      buf_cv_.wait_for(lock, std::chrono::milliseconds(block_ms));
    }
    return Status::Ok();
  }
  std::vector<std::string> argv = {"XREADGROUP", "GROUP", kGroup, options_.consumer, "COUNT", "1"};
  if (block_ms > 0) {
    argv.push_back("BLOCK");
    argv.push_back(std::to_string(block_ms));
  }
  argv.push_back("STREAMS");
  std::vector<std::string> keys;
  for (int high = 1; high >= 0; --high) {
    for (const std::string& q : queues) {
      for (int s = 0; s < options_.shards; ++s) keys.push_back(StreamKey(q, high, s));
    }
  }
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), keys.size(), ">");
  link->conn.SetTimeout(block_ms + options_.timeout_ms);
  auto r = Run(link, argv);
  link->conn.SetTimeout(options_.timeout_ms);
  if (!r.ok()) {
    if (r.status().message().find("NOGROUP") != std::string::npos) {
      // Redis lost its data (restarted empty, FLUSHALL): make the groups again.
      spdlog::warn("Redis {}: consumer groups are gone (restarted empty?); making them again",
                   redis::Describe(endpoint_));
      grouped_.clear();
      cursors_.clear();
      return Status::Ok();
    }
    return r.status();
  }
  int64_t now = clock_->MonotonicMicros();
  std::vector<Buffered> high, low;
  for (const redis::Reply& stream : r->elements) {
    if (stream.elements.size() < 2) continue;
    const std::string& key = stream.elements[0].str;
    bool is_high = key.find(":hi:") != std::string::npos;
    for (const redis::Reply& entry : stream.elements[1].elements) {
      std::optional<Ticket> t = FromEntry(key, entry);
      if (!t) continue;
      (is_high ? high : low).push_back({*t, now});
    }
  }
  // Within what one read brought, oldest first.
  auto by_order = [](const Buffered& a, const Buffered& b) {
    return a.ticket.order < b.ticket.order;
  };
  std::stable_sort(high.begin(), high.end(), by_order);
  std::stable_sort(low.begin(), low.end(), by_order);
  std::lock_guard<std::mutex> lock(buf_mu_);
  // High before low, and ahead of what is buffered already unless that is high too.
  auto at = std::find_if(buffer_.begin(), buffer_.end(),
                         [](const Buffered& b) { return b.ticket.priority <= 0; });
  at = buffer_.insert(at, high.begin(), high.end());
  buffer_.insert(buffer_.end(), low.begin(), low.end());
  return Status::Ok();
}

std::optional<Ticket> RedisBroker::TakeBuffered() {
  if (buffer_.empty()) return std::nullopt;
  Ticket t = std::move(buffer_.front().ticket);
  buffer_.pop_front();
  return t;
}

std::optional<Ticket> RedisBroker::Pop(std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(buf_mu_);
      if (closed_) return std::nullopt;
      if (auto t = TakeBuffered()) return t;
    }
    auto now = std::chrono::steady_clock::now();
    int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    std::unique_lock<std::mutex> reader(read_mu_, std::try_to_lock);
    if (reader.owns_lock()) {
      Status st = Maintain(read_.get());
      bool have;
      {
        std::lock_guard<std::mutex> lock(buf_mu_);
        have = !buffer_.empty();
      }
      if (st.ok() && !have) {
        int block = static_cast<int>(std::clamp<int64_t>(left_ms, 0, kMaxBlockMs));
        if (next_due_ > 0) {
          int64_t due_ms = (next_due_ - clock_->NowMicros()) / 1000 + 1;
          block = static_cast<int>(std::clamp<int64_t>(due_ms, 0, block));
        }
        st = Read(read_.get(), block);
      }
      reader.unlock();
      if (!st.ok()) {
        // Redis is away: wait a little (not past the caller's wait) and try again.
        std::unique_lock<std::mutex> lock(buf_mu_);
        buf_cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(left_ms, 0, 100)));
      } else {
        buf_cv_.notify_all();
      }
    } else {
      std::unique_lock<std::mutex> lock(buf_mu_);
      buf_cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(left_ms, 0, 20)));
    }
    {
      std::lock_guard<std::mutex> lock(buf_mu_);
      if (!buffer_.empty() && !closed_) continue;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
  }
}

void RedisBroker::Ack(const Ticket& t) { AckAll({t}); }

void RedisBroker::AckAll(const std::vector<Ticket>& tickets) {
  std::vector<std::vector<std::string>> commands;
  std::vector<int64_t> jobs;
  for (const Ticket& t : tickets) {
    std::string key, id;
    if (t.dead || !SplitHandle(t.delivery, &key, &id)) continue;  // a dead letter is off already
    commands.push_back({"EVAL", kOwned, "1", key, kGroup, options_.consumer, id, "ack"});
    jobs.push_back(t.job_id);
  }
  if (commands.empty()) return;
  std::lock_guard<std::mutex> lock(cmd_mu_);
  auto r = RunAll(cmd_.get(), commands);  // one round trip for all
  if (!r.ok()) return;  // left pending: reclaimed after the lease, and dropped (job ended)
  for (size_t i = 0; i < r->size() && i < jobs.size(); ++i) {
    if ((*r)[i].Int(0) == 0) {
      spdlog::info("job {}: its broker entry was taken over by another worker; left to it",
                   jobs[i]);
    }
  }
}

void RedisBroker::Extend(const Ticket& t) {
  std::string key, id;
  if (t.dead || !SplitHandle(t.delivery, &key, &id)) return;
  std::lock_guard<std::mutex> lock(cmd_mu_);
  (void)Run(cmd_.get(), {"EVAL", kOwned, "1", key, kGroup, options_.consumer, id, "extend"});
}

void RedisBroker::Close() {
  std::deque<Buffered> unread;
  {
    std::lock_guard<std::mutex> lock(buf_mu_);
    if (closed_) return;
    closed_ = true;
    unread.swap(buffer_);
  }
  buf_cv_.notify_all();
  // Read ahead and never handed out: given back at once (a copy for any consumer, this
  // one's entry acknowledged), not left to lapse with the lease and count as a delivery.
  for (const Buffered& b : unread) {
    if (b.ticket.dead) continue;  // moved to the dead-letter stream already; its job fails
    Ticket copy = b.ticket;
    copy.delivery.clear();
    Push(copy);
    Ack(b.ticket);
  }
}

Result<std::vector<StreamStats>> RedisBroker::Stats() const {
  std::lock_guard<std::mutex> lock(cmd_mu_);
  auto queues = ServedQueues();
  if (!queues.ok()) return queues.status();
  std::vector<StreamStats> out;
  for (const std::string& q : *queues) {
    for (int high = 1; high >= 0; --high) {
      for (int s = 0; s < options_.shards; ++s) {
        StreamStats st;
        st.queue = q;
        st.high = high;
        st.shard = s;
        std::string key = StreamKey(q, high, s);
        auto len = Run(cmd_.get(), {"XLEN", key});
        if (!len.ok()) return len.status();
        st.length = len->Int(0);
        auto groups = Run(cmd_.get(), {"XINFO", "GROUPS", key});
        if (groups.ok()) {
          for (const redis::Reply& g : groups->elements) {
            for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
              if (g.elements[i].str == "consumers") st.consumers = g.elements[i + 1].Int(0);
              if (g.elements[i].str == "pending") st.pending = g.elements[i + 1].Int(0);
            }
          }
        }
        if (st.pending > 0) {
          auto oldest = Run(cmd_.get(), {"XPENDING", key, kGroup, "IDLE", "0", "-", "+", "100"});
          if (oldest.ok()) {
            for (const redis::Reply& p : oldest->elements) {
              if (p.elements.size() == 4) {
                st.oldest_pending_ms = std::max(st.oldest_pending_ms, p.elements[2].Int(0));
              }
            }
          }
        }
        out.push_back(st);
      }
    }
  }
  return out;
}

size_t RedisBroker::ReadyCount() const {
  auto stats = Stats();
  if (!stats.ok()) return 0;
  int64_t n = BufferedCount();
  for (const StreamStats& s : *stats) n += std::max<int64_t>(0, s.length - s.pending);
  return static_cast<size_t>(n);
}

size_t RedisBroker::PendingCount() const {
  auto stats = Stats();
  if (!stats.ok()) return 0;
  int64_t n = -BufferedCount();
  for (const StreamStats& s : *stats) n += s.pending;
  return static_cast<size_t>(std::max<int64_t>(0, n));
}

int64_t RedisBroker::BufferedCount() const {
  std::lock_guard<std::mutex> lock(buf_mu_);
  int64_t n = 0;
  for (const auto& b : buffer_) n += b.ticket.dead ? 0 : 1;
  return n;
}

Result<std::vector<std::string>> RedisBroker::ServedQueues() const {
  if (!options_.queues.empty()) return options_.queues;
  auto r = Run(cmd_.get(), {"SMEMBERS", options_.prefix + ":queues"});
  if (!r.ok()) return r.status();
  std::vector<std::string> queues;
  for (const auto& e : r->elements) {
    if (!options_.serves || options_.serves(e.str)) queues.push_back(e.str);
  }
  std::sort(queues.begin(), queues.end());
  return queues;
}

size_t RedisBroker::SumOverQueues(const char* command, const std::string& kind) const {
  std::lock_guard<std::mutex> lock(cmd_mu_);
  auto queues = ServedQueues();
  if (!queues.ok()) return 0;
  size_t n = 0;
  for (const std::string& q : *queues) {
    auto r = Run(cmd_.get(), {command, options_.prefix + ":" + kind + ":" + q});
    if (r.ok()) n += static_cast<size_t>(r->Int(0));
  }
  return n;
}

size_t RedisBroker::HeldCount() const {
  auto stats = Stats();
  if (!stats.ok()) return 1;  // cannot tell: not "nothing held"
  int64_t n = 0;
  for (const StreamStats& s : *stats) n += s.length;  // waiting and pending, buffered ones too
  return static_cast<size_t>(n) + DelayedCount();
}

size_t RedisBroker::DelayedCount() const { return SumOverQueues("ZCARD", "delayed"); }

size_t RedisBroker::DeadCount() const { return SumOverQueues("XLEN", "dead"); }

void RedisBroker::PublishEvents(const std::vector<Event>& events) {
  if (events.empty()) return;
  std::vector<std::vector<std::string>> commands;
  commands.reserve(events.size());
  std::string key = options_.prefix + ":events";
  for (const Event& e : events) {
    commands.push_back({"XADD",   key,
                        "MAXLEN", "~",
                        "100000", "*",
                        "id",     std::to_string(e.id),
                        "ts",     std::to_string(e.ts),
                        "job",    std::to_string(e.job_id),
                        "queue",  e.queue,
                        "kind",   e.kind,
                        "type",   e.type,
                        "data",   e.data});
  }
  std::lock_guard<std::mutex> lock(cmd_mu_);
  auto r = RunAll(cmd_.get(), commands);  // one round trip for the commit's events
  if (!r.ok()) counters_.push_failures++;
}

Result<std::vector<Event>> RedisBroker::ReadEvents(int block_ms) {
  std::lock_guard<std::mutex> lock(events_mu_);
  std::string key = options_.prefix + ":events";
  if (events_cursor_.empty()) {
    // From the newest entry now: what came before is the store's to tell.
    auto last = Run(events_.get(), {"XREVRANGE", key, "+", "-", "COUNT", "1"});
    if (!last.ok()) return last.status();
    events_cursor_ = last->elements.empty() ? "0-0" : last->elements[0].elements[0].str;
  }
  events_->conn.SetTimeout(block_ms + options_.timeout_ms);
  auto r = Run(events_.get(), {"XREAD", "COUNT", "1000", "BLOCK", std::to_string(block_ms),
                               "STREAMS", key, events_cursor_});
  events_->conn.SetTimeout(options_.timeout_ms);
  if (!r.ok()) return r.status();
  std::vector<Event> out;
  for (const redis::Reply& stream : r->elements) {
    if (stream.elements.size() < 2) continue;
    for (const redis::Reply& entry : stream.elements[1].elements) {
      if (entry.elements.size() < 2) continue;
      events_cursor_ = entry.elements[0].str;
      Event e;
      const redis::Reply& fields = entry.elements[1];
      for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
        const std::string& f = fields.elements[i].str;
        const redis::Reply& v = fields.elements[i + 1];
        if (f == "id")
          e.id = v.Int(0);
        else if (f == "ts")
          e.ts = v.Int(0);
        else if (f == "job")
          e.job_id = v.Int(0);
        else if (f == "queue")
          e.queue = v.str;
        else if (f == "kind")
          e.kind = v.str;
        else if (f == "type")
          e.type = v.str;
        else if (f == "data")
          e.data = v.str;
      }
      if (e.id > 0 && !e.type.empty()) out.push_back(std::move(e));
    }
  }
  return out;
}

Result<std::set<int64_t>> RedisBroker::HeldJobIds() const {
  std::lock_guard<std::mutex> lock(cmd_mu_);
  auto queues = Run(cmd_.get(), {"SMEMBERS", options_.prefix + ":queues"});
  if (!queues.ok()) return queues.status();
  std::set<int64_t> held;
  for (const redis::Reply& q : queues->elements) {
    for (int high = 1; high >= 0; --high) {
      for (int s = 0; s < options_.shards; ++s) {
        std::string key = StreamKey(q.str, high, s), from = "-";
        while (true) {
          auto r = Run(cmd_.get(), {"XRANGE", key, from, "+", "COUNT", "5000"});
          if (!r.ok()) return r.status();
          for (const redis::Reply& entry : r->elements) {
            if (auto t = FromEntry(key, entry)) held.insert(t->job_id);
          }
          if (r->elements.size() < 5000) break;
          from = "(" + r->elements.back().elements[0].str;
        }
      }
    }
    auto delayed = Run(cmd_.get(), {"ZRANGE", options_.prefix + ":delayed:" + q.str, "0", "-1"});
    if (!delayed.ok()) return delayed.status();
    for (const redis::Reply& m : delayed->elements) {
      held.insert(std::strtoll(m.str.c_str(), nullptr, 10));
    }
  }
  return held;
}

BrokerCounters RedisBroker::counters() const {
  return {counters_.push_failures.load(), counters_.reclaims.load(), counters_.dead_letters.load()};
}

}  // namespace sluice
