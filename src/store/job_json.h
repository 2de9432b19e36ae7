// The JSON shape of a job: id, state, kind, queue, spool, name, attempts, interruptions,
// timestamps (RFC 3339), error {code, message, detail} and result, as users see it.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "store/job.h"

namespace sluice {

void WriteJobJson(const Job& job, rapidjson::Writer<rapidjson::StringBuffer>* writer);
std::string JobJson(const Job& job);
// {"code", "message", "detail"?}: a job's error (detail only when `with_detail`).
void WriteJobErrorJson(const JobError& error, bool with_detail,
                       rapidjson::Writer<rapidjson::StringBuffer>* writer);

}  // namespace sluice
