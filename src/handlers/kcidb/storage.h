// Offloading long log excerpts to a storage service, as the reference ingester does:
// excerpts over 256 characters are gzipped and sent as `POST {base}/upload` (multipart part
// `file0` named logexcerpt.txt.gz, field `path=logexcerpt/<sha256>`, bearer token); on HTTP 200
// the excerpt becomes "" and {"name": "log_excerpt", "url": "{base}/logexcerpt/<sha256>/
// logexcerpt.txt.gz"} is appended to output_files. Any failure keeps the excerpt inline.
//
// Better than the reference: connect and total timeouts (a hung service never stalls
// ingestion), a few tries with backoff, and a dedup cache by sha256 that is bounded in memory
// and persisted in the store, so a restart does not upload the same text again.
#pragma once

#include <rapidjson/document.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "store/store.h"

namespace sluice::kcidb {

struct StorageOptions {
  std::string base_url;  // STORAGE_BASE_URL
  std::string token;     // STORAGE_TOKEN; empty disables uploads
  long connect_timeout_ms = 5000;
  long total_timeout_ms = 30000;
  int max_tries = 3;
  long backoff_ms = 200;  // doubled after each failed try
  size_t cache_entries = 100000;
  size_t threshold_chars = 256;
};

struct StorageStats {
  std::atomic<uint64_t> uploaded{0};
  std::atomic<uint64_t> deduplicated{0};
  std::atomic<uint64_t> failed{0};
};

class ExcerptUploader {
 public:
  // `store` (may be null) persists the dedup cache across restarts.
  ExcerptUploader(StorageOptions options, Store* store);

  // Replaces long excerpts in `doc` (a 5.3 submission) by uploaded files. Never fails the job:
  // an excerpt that could not be uploaded stays inline. Thread-safe.
  Status OffloadExcerpts(rapidjson::Document* doc);

  const StorageStats& stats() const { return stats_; }

 private:
  std::optional<std::string> Cached(const std::string& sha);
  void Remember(const std::string& sha, const std::string& url);
  // Uploads once with retries; the stored URL on success.
  std::optional<std::string> Upload(const std::string& sha, std::string_view text);

  StorageOptions options_;
  Store* store_;
  StorageStats stats_;
  std::mutex mu_;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, std::pair<std::string, std::list<std::string>::iterator>> cache_;
};

// Hex sha256 of `data`.
std::string Sha256Hex(std::string_view data);
// gzip of `data`.
Result<std::string> Gzip(std::string_view data);

}  // namespace sluice::kcidb
