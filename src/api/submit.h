// The body of POST /api/v1/jobs: {kind, queue?, payload, priority?, max_attempts?, run_at?,
// idempotency_key?}. Not JSON is a 400; JSON that is not such a request is a 422 naming the
// field.
#pragma once

#include <string>
#include <variant>

#include "api/http_types.h"
#include "store/job.h"

namespace sluice::api {

// The job to submit, or the error response to send.
std::variant<Job, HttpResponse> ParseSubmission(const std::string& body);

}  // namespace sluice::api
