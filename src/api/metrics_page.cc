// The metric families Sluice exports.
#include "api/metrics_page.h"

#include "core/metrics.h"

namespace sluice::api {

std::string RenderMetrics(const Engine& engine, Store* store) {
  Exposition x;
  const EngineCounters& c = engine.counters();
  EngineSnapshot s = engine.Snapshot();
  Labels spool{{"spool", engine.spool_root()}};

  x.Family("sluice_jobs", "gauge", "Jobs in the store by queue and state.");
  auto by_queue = store->CountJobsByQueue();
  if (by_queue.ok()) {
    for (const auto& [key, n] : *by_queue) {
      x.Sample("sluice_jobs", {{"queue", key.first}, {"state", key.second}},
               static_cast<double>(n));
    }
  }
  x.Family("sluice_jobs_registered_total", "counter", "Files registered as jobs since start.");
  x.Sample("sluice_jobs_registered_total", spool, static_cast<double>(c.registered.load()));
  x.Family("sluice_jobs_finished_total", "counter", "Jobs finished since start, by outcome.");
  x.Sample("sluice_jobs_finished_total", {{"spool", engine.spool_root()}, {"outcome", "succeeded"}},
           static_cast<double>(c.succeeded.load()));
  x.Sample("sluice_jobs_finished_total", {{"spool", engine.spool_root()}, {"outcome", "failed"}},
           static_cast<double>(c.failed.load()));
  x.Family("sluice_job_retries_total", "counter", "Tries that failed and were scheduled again.");
  x.Sample("sluice_job_retries_total", spool, static_cast<double>(c.retried.load()));
  x.Family("sluice_job_failures_total", "counter", "Jobs failed since start, by error code.");
  for (const auto& [code, n] : s.failures_by_code) {
    x.Sample("sluice_job_failures_total", {{"spool", engine.spool_root()}, {"code", code}},
             static_cast<double>(n));
  }
  x.Family("sluice_job_processing_seconds", "histogram", "Handler run time of one try.");
  x.HistogramSamples("sluice_job_processing_seconds", {{"kind", std::string(engine.kind())}},
                     engine.processing_seconds());
  x.Family("sluice_job_wait_seconds", "histogram",
           "From a file landing (its mtime) to its first try starting.");
  x.HistogramSamples("sluice_job_wait_seconds", spool, engine.wait_seconds());
  x.Family("sluice_spool_backlog", "gauge", "Files known and not finished or not moved yet.");
  x.Sample("sluice_spool_backlog", spool, static_cast<double>(s.backlog));
  x.Family("sluice_spool_oldest_pending_seconds", "gauge",
           "Age of the oldest unfinished file (0 when none).");
  x.Sample("sluice_spool_oldest_pending_seconds", spool, s.oldest_pending_s);
  x.Family("sluice_ingested_bytes_total", "counter", "Bytes of files processed successfully.");
  x.Sample("sluice_ingested_bytes_total", spool, static_cast<double>(c.bytes.load()));
  x.Family("sluice_commits_total", "counter", "Group commits of the store writer.");
  x.Sample("sluice_commits_total", {}, static_cast<double>(c.commits.load()));
  x.Family("sluice_objects_total", "counter",
           "Objects stored since start, by kind, table and origin.");
  for (const auto& [key, n] : s.objects) {
    x.Sample("sluice_objects_total",
             {{"kind", std::string(engine.kind())}, {"type", key.first}, {"origin", key.second}},
             static_cast<double>(n));
  }
  const EventHub& hub = engine.events();
  x.Family("sluice_events_written_total", "counter",
           "Events (state changes, job log lines) committed and published since start.");
  x.Sample("sluice_events_written_total", {}, static_cast<double>(hub.published()));
  x.Family("sluice_sse_clients", "gauge", "Live event readers: SSE streams and followed logs.");
  x.Sample("sluice_sse_clients", {}, static_cast<double>(hub.subscribers()));
  x.Family("sluice_sse_lagged_total", "counter",
           "Live readers cut off because they fell more than --sse-buffer events behind.");
  x.Sample("sluice_sse_lagged_total", {}, static_cast<double>(hub.lagged()));
  return x.text();
}

}  // namespace sluice::api
