// RedisItemsOut: see redis_items.h.
#include "broker/redis/redis_items.h"

#include "core/pickle.h"

namespace sluice {

constexpr int kTimeoutMs = 5000;

Result<std::unique_ptr<RedisItemsOut>> RedisItemsOut::Open(const std::string& url,
                                                           const std::string& key, bool pickle) {
  if (key.empty()) return Status::InvalidArgument("--items-key is empty");
  auto e = redis::ParseUrl(url);
  if (!e.ok()) return e.status();
  std::unique_ptr<RedisItemsOut> out(new RedisItemsOut(*e, key, pickle));
  std::lock_guard<std::mutex> lock(out->mu_);
  SLUICE_RETURN_IF_ERROR(out->Connect());
  return out;
}

Status RedisItemsOut::Connect() {
  if (conn_.connected()) return Status::Ok();
  redis::Endpoint where = endpoint_;
  if (!endpoint_.master_name.empty()) {
    auto m = redis::Conn::FindMaster(endpoint_, kTimeoutMs);
    if (!m.ok()) return m.status();
    where = *m;
  }
  auto c = redis::Conn::Connect(where, kTimeoutMs);
  if (!c.ok()) return c.status();
  conn_ = std::move(*c);
  return Status::Ok();
}

std::string RedisItemsOut::Field(const std::string& task_id, int64_t task_seq) {
  // The task's store seq first: a task removed and added again under the same id starts
  // from nothing.
  return std::to_string(task_seq) + " " + task_id;
}

std::string RedisItemsOut::Describe() const {
  return "Redis " + redis::Describe(endpoint_) + " list " + key_;
}

Result<int64_t> RedisItemsOut::Position(const std::string& task_id, int64_t task_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(Connect());
  auto r = conn_.Command({"HGET", key_ + ":positions", Field(task_id, task_seq)});
  if (!r.ok()) return r.status();
  return r->Int(0);
}

Status RedisItemsOut::Append(const std::string& task_id, int64_t task_seq,
                             const std::vector<std::string>& items, int64_t last_seq) {
  if (items.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(Connect());
  std::vector<std::string> push = {"RPUSH", key_};
  for (const std::string& item : items) {
    if (!pickle_) {
      push.push_back(item);
      continue;
    }
    auto pickled = JsonToPickle(item);
    if (!pickled.ok()) return pickled.status().Annotate("an item of task " + task_id);
    push.push_back(std::move(*pickled));
  }
  auto replies = conn_.Pipeline(
      {{"MULTI"},
       push,
       {"HSET", key_ + ":positions", Field(task_id, task_seq), std::to_string(last_seq)},
       {"EXEC"}});
  if (!replies.ok()) return replies.status();
  const redis::Reply& exec = replies->back();
  if (exec.error()) return redis::ErrorOf(exec, "EXEC");
  if (exec.type != redis::Reply::Type::kArray || exec.elements.size() != 2) {
    return Status::Unavailable("Redis " + redis::Describe(endpoint_) +
                               ": the items' transaction was not applied");
  }
  for (const redis::Reply& r : exec.elements) {
    if (r.error()) return redis::ErrorOf(r, "RPUSH " + key_);
  }
  return Status::Ok();
}

}  // namespace sluice
