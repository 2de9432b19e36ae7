// ExcerptUploader: libcurl multipart uploads with timeouts, retries and a dedup cache.
#include "handlers/kcidb/storage.h"

#include <curl/curl.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <chrono>
#include <memory>
#include <thread>

#include "core/spdlog.h"
#include "core/text.h"

namespace sluice::kcidb {
namespace {

constexpr const char* kCacheNs = "kcidb.excerpt_url";

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexBytes(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

Result<std::string> Gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return Status::Internal("deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("gzip failed");
  return out;
}

ExcerptUploader::ExcerptUploader(StorageOptions options, Store* store)
    : options_(std::move(options)), store_(store) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
}

std::optional<std::string> ExcerptUploader::Cached(const std::string& sha) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(sha);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
  }
  if (store_ != nullptr) {
    auto v = store_->GetValue(kCacheNs, sha);
    if (v.ok() && v->has_value()) {
      Remember(sha, **v);
      return **v;
    }
  }
  return std::nullopt;
}

void ExcerptUploader::Remember(const std::string& sha, const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.count(sha)) return;
  lru_.push_front(sha);
  cache_[sha] = {url, lru_.begin()};
  while (cache_.size() > options_.cache_entries && !lru_.empty()) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
}

std::optional<std::string> ExcerptUploader::Upload(const std::string& sha, std::string_view text) {
  auto gz = Gzip(text);
  if (!gz.ok()) return std::nullopt;
  std::string path = "logexcerpt/" + sha;
  std::string url = options_.base_url + "/upload";
  std::string auth = "Authorization: Bearer " + options_.token;
  long backoff = options_.backoff_ms;
  for (int attempt = 1; attempt <= options_.max_tries; ++attempt) {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
    if (!curl) return std::nullopt;
    curl_mime* mime = curl_mime_init(curl.get());
    curl_mimepart* part = curl_mime_addpart(mime);
    curl_mime_name(part, "file0");
    curl_mime_filename(part, "logexcerpt.txt.gz");
    curl_mime_data(part, gz->data(), gz->size());
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "path");
    curl_mime_data(part, path.c_str(), CURL_ZERO_TERMINATED);
    curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, options_.total_timeout_ms);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &Discard);
    CURLcode rc = curl_easy_perform(curl.get());
    long http = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
    curl_slist_free_all(headers);
    curl_mime_free(mime);
    if (rc == CURLE_OK && http == 200) {
      return options_.base_url + "/logexcerpt/" + sha + "/logexcerpt.txt.gz";
    }
    spdlog::warn("excerpt upload {} try {}/{} failed: {}", sha.substr(0, 12), attempt,
                 options_.max_tries,
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(http));
    // A 4xx other than 408/429 will not get better by trying again.
    if (rc == CURLE_OK && http >= 400 && http < 500 && http != 408 && http != 429) break;
    if (attempt < options_.max_tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff *= 2;
    }
  }
  return std::nullopt;
}

Status ExcerptUploader::OffloadExcerpts(rapidjson::Document* doc) {
  if (options_.token.empty() || options_.base_url.empty()) return Status::Ok();
  auto& alloc = doc->GetAllocator();
  for (const char* list : {"checkouts", "builds", "tests"}) {
    auto it = doc->FindMember(list);
    if (it == doc->MemberEnd() || !it->value.IsArray()) continue;
    for (auto& obj : it->value.GetArray()) {
      auto ex = obj.FindMember("log_excerpt");
      if (ex == obj.MemberEnd() || !ex->value.IsString()) continue;
      std::string_view text(ex->value.GetString(), ex->value.GetStringLength());
      if (Utf8Length(text) <= options_.threshold_chars) continue;
      std::string sha = Sha256Hex(text);
      std::optional<std::string> url = Cached(sha);
      if (url) {
        stats_.deduplicated++;
      } else {
        url = Upload(sha, text);
        if (!url) {
          stats_.failed++;
          continue;  // keep the excerpt inline
        }
        stats_.uploaded++;
        Remember(sha, *url);
        if (store_ != nullptr) (void)store_->PutValue(kCacheNs, sha, *url);
      }
      ex->value.SetString("", alloc);
      auto files = obj.FindMember("output_files");
      if (files == obj.MemberEnd()) {
        obj.AddMember("output_files", rapidjson::Value(rapidjson::kArrayType), alloc);
        files = obj.FindMember("output_files");
      }
      if (!files->value.IsArray()) continue;
      rapidjson::Value res(rapidjson::kObjectType);
      res.AddMember("name", "log_excerpt", alloc);
      res.AddMember("url", rapidjson::Value(url->c_str(), alloc), alloc);
      files->value.PushBack(res, alloc);
    }
  }
  return Status::Ok();
}

}  // namespace sluice::kcidb
