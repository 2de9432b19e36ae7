// Object tables: what handlers ingest (KCIDB checkouts, builds, tests, …) described generically,
// so the store needs no knowledge of any handler's data model.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace sluice {

enum class ColumnType { kText, kInteger, kReal };

// How a column merges when a row with the same key arrives again.
enum class MergeRule {
  kKey,           // the primary key ("id")
  kFirstNonNull,  // COALESCE(existing, new): the first non-null value wins
  kGreatest,      // the greatest non-null value wins (e.g. "_timestamp")
};

struct ColumnSpec {
  std::string name;
  ColumnType type = ColumnType::kText;
  MergeRule merge = MergeRule::kFirstNonNull;
};

struct TableSpec {
  std::string name;
  std::vector<ColumnSpec> columns;  // exactly one kKey column
  // PostgreSQL: the statements that create this table (and others of the same DDL) when it
  // is missing, with the database's own types (timestamptz, jsonb, text[], varchar(n), …).
  // A table with DDL is written as it is, never altered; one without gets generic types and
  // the columns a newer spec brings.
  std::string postgres_ddl;
};

using Value = std::variant<std::monostate, int64_t, double, std::string>;

// One object to upsert: `values` line up with the columns of tables[table].
struct ObjectRow {
  int table = 0;
  std::vector<Value> values;
};

}  // namespace sluice
