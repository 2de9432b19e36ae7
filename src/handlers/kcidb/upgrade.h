// Upgrading a KCIDB submission to the latest schema (5.3), one major step at a time, as
// kcidb-io does. The document must already be valid against the schema of `from`.
#pragma once

#include <rapidjson/document.h>

#include "core/status.h"
#include "handlers/kcidb/schemas.h"

namespace sluice::kcidb {

// Upgrades `doc` in place from version `from` to kLatest and sets its version. Returns
// FailedPrecondition ("upgrade impossible") when the data cannot be carried over as it is,
// e.g. a v4 test path the v5 schema forbids; the caller validates the result against 5.3.
Status UpgradeToLatest(rapidjson::Document* doc, Version from);

}  // namespace sluice::kcidb
