// RedisItemsOut: a task's items pushed to a Redis list (RPUSH, as Arthur's arthurd fills its
// "items" list), as JSON or as Python pickles. The position of each task is a field of the hash
// KEY:positions, set in the same MULTI/EXEC as the push.
#pragma once

#include <memory>
#include <mutex>

#include "broker/items_out.h"
#include "broker/redis/redis_conn.h"

namespace sluice {

class RedisItemsOut : public ItemsOut {
 public:
  // Connects (a Redis that cannot be reached is Unavailable, naming it). With `pickle`, each
  // item is pushed as the pickle of its JSON (core/pickle.h).
  static Result<std::unique_ptr<RedisItemsOut>> Open(const std::string& url, const std::string& key,
                                                     bool pickle = false);

  Result<int64_t> Position(const std::string& task_id, int64_t task_seq) override;
  Status Append(const std::string& task_id, int64_t task_seq, const std::vector<std::string>& items,
                int64_t last_seq) override;
  std::string Describe() const override;

 private:
  RedisItemsOut(redis::Endpoint endpoint, std::string key, bool pickle)
      : endpoint_(std::move(endpoint)), key_(std::move(key)), pickle_(pickle) {}
  Status Connect();  // mu_ held
  static std::string Field(const std::string& task_id, int64_t task_seq);

  redis::Endpoint endpoint_;
  std::string key_;
  bool pickle_;
  std::mutex mu_;
  redis::Conn conn_;
};

}  // namespace sluice
