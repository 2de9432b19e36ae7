// The metric families Sluice exports.
#include "api/metrics_page.h"

#include "core/clock.h"
#include "core/metrics.h"

namespace sluice::api {

std::string RenderMetrics(const std::vector<const Engine*>& engines, const EventHub& hub,
                          Store* store, const std::function<void(Exposition*)>& more) {
  Exposition x;
  std::vector<EngineSnapshot> snaps;
  for (const Engine* e : engines) snaps.push_back(e->Snapshot());
  auto spool = [](const Engine* e) { return Labels{{"spool", e->spool_root()}}; };
  // Samples of one family, one per spool.
  auto per_spool = [&](const char* name, const char* type, const char* help,
                       const std::function<double(size_t)>& value) {
    x.Family(name, type, help);
    for (size_t i = 0; i < engines.size(); ++i) x.Sample(name, spool(engines[i]), value(i));
  };

  x.Family("sluice_jobs", "gauge", "Jobs in the store by queue and state.");
  auto by_queue = store->CountJobsByQueue();
  if (by_queue.ok()) {
    for (const auto& [key, n] : *by_queue) {
      x.Sample("sluice_jobs", {{"queue", key.first}, {"state", key.second}},
               static_cast<double>(n));
    }
  }
  per_spool(
      "sluice_jobs_registered_total", "counter", "Files registered as jobs since start.",
      [&](size_t i) { return static_cast<double>(engines[i]->counters().registered.load()); });
  x.Family("sluice_jobs_finished_total", "counter", "Jobs finished since start, by outcome.");
  for (const Engine* e : engines) {
    x.Sample("sluice_jobs_finished_total", {{"spool", e->spool_root()}, {"outcome", "succeeded"}},
             static_cast<double>(e->counters().succeeded.load()));
    x.Sample("sluice_jobs_finished_total", {{"spool", e->spool_root()}, {"outcome", "failed"}},
             static_cast<double>(e->counters().failed.load()));
  }
  per_spool("sluice_job_retries_total", "counter", "Tries that failed and were scheduled again.",
            [&](size_t i) { return static_cast<double>(engines[i]->counters().retried.load()); });
  x.Family("sluice_job_failures_total", "counter", "Jobs failed since start, by error code.");
  for (size_t i = 0; i < engines.size(); ++i) {
    for (const auto& [code, n] : snaps[i].failures_by_code) {
      x.Sample("sluice_job_failures_total", {{"spool", engines[i]->spool_root()}, {"code", code}},
               static_cast<double>(n));
    }
  }
  x.Family("sluice_job_processing_seconds", "histogram", "Handler run time of one try.");
  for (const Engine* e : engines) {
    x.HistogramSamples("sluice_job_processing_seconds",
                       {{"kind", std::string(e->kind())}, {"spool", e->spool_root()}},
                       e->processing_seconds());
  }
  x.Family("sluice_job_wait_seconds", "histogram",
           "From a file landing (its mtime) to its first try starting.");
  for (const Engine* e : engines) {
    x.HistogramSamples("sluice_job_wait_seconds", spool(e), e->wait_seconds());
  }
  per_spool("sluice_spool_backlog", "gauge", "Files known and not finished or not moved yet.",
            [&](size_t i) { return static_cast<double>(snaps[i].backlog); });
  per_spool("sluice_spool_oldest_pending_seconds", "gauge",
            "Age of the oldest unfinished file (0 when none).",
            [&](size_t i) { return snaps[i].oldest_pending_s; });
  per_spool("sluice_ingested_bytes_total", "counter", "Bytes of files processed successfully.",
            [&](size_t i) { return static_cast<double>(engines[i]->counters().bytes.load()); });
  per_spool("sluice_commits_total", "counter", "Group commits of the spool's store writer.",
            [&](size_t i) { return static_cast<double>(engines[i]->counters().commits.load()); });
  per_spool("sluice_store_write_failing", "gauge",
            "1 while the spool's store writes fail and are retried (a full disk, a database "
            "gone), else 0.",
            [&](size_t i) { return engines[i]->StoreWritable().ok() ? 0.0 : 1.0; });
  x.Family("sluice_objects_total", "counter",
           "Objects stored since start, by kind, table and origin.");
  for (size_t i = 0; i < engines.size(); ++i) {
    for (const auto& [key, n] : snaps[i].objects) {
      x.Sample(
          "sluice_objects_total",
          {{"kind", std::string(engines[i]->kind())}, {"type", key.first}, {"origin", key.second}},
          static_cast<double>(n));
    }
  }
  x.Family("sluice_events_written_total", "counter",
           "Events (state changes, job log lines) committed and published since start.");
  x.Sample("sluice_events_written_total", {}, static_cast<double>(hub.published()));
  x.Family("sluice_sse_clients", "gauge", "Live event readers: SSE streams and followed logs.");
  x.Sample("sluice_sse_clients", {}, static_cast<double>(hub.subscribers()));
  x.Family("sluice_sse_lagged_total", "counter",
           "Live readers cut off because they fell more than --sse-buffer events behind.");
  x.Sample("sluice_sse_lagged_total", {}, static_cast<double>(hub.lagged()));
  // On a shared database: who holds which role (engine/ownership.h), live ones only.
  auto leases = store->ListLeases();
  if (leases.ok() && !leases->empty()) {
    int64_t now = Clock::Real()->NowMicros();
    x.Family("sluice_lease_epoch", "gauge",
             "Roles held now (a spool, the scheduler, each daemon), by holder: the epoch, "
             "which rises at each takeover.");
    for (const Lease& l : *leases) {
      if (l.until >= now) {
        x.Sample("sluice_lease_epoch", {{"name", l.name}, {"owner", l.owner}},
                 static_cast<double>(l.epoch));
      }
    }
    x.Family("sluice_lease_seconds_left", "gauge", "Seconds before a held role's lease ends.");
    for (const Lease& l : *leases) {
      if (l.until >= now) {
        x.Sample("sluice_lease_seconds_left", {{"name", l.name}, {"owner", l.owner}},
                 (l.until - now) / 1e6);
      }
    }
  }
  if (more) more(&x);
  return x.text();
}

}  // namespace sluice::api
