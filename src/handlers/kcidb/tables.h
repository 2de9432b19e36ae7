// The KCIDB object tables (checkouts, builds, tests, issues, incidents), derived from the latest
// shipped schema: one column per field with the field's name; nested objects with fixed
// properties (environment, number, culprit) flattened as environment_comment, number_value, …;
// arrays and free-form objects (misc) stored as JSON text.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/objects.h"

namespace sluice::kcidb {

class Tables {
 public:
  // Derives the tables from the schema text. InvalidArgument if it lacks what is expected.
  static Result<Tables> FromSchema(std::string_view schema_json);

  const std::vector<TableSpec>& specs() const { return specs_; }
  // Gives every table the PostgreSQL DDL that creates it (the KernelCI dashboard's tables).
  void SetPostgresDdl(const std::string& ddl) {
    for (TableSpec& s : specs_) s.postgres_ddl = ddl;
  }
  // Index of the table fed by the top-level list `list` ("tests"), or -1.
  int TableFor(std::string_view list) const;
  // Index of `column` in table `table`, or -1.
  int ColumnIndex(int table, std::string_view column) const;
  // The top-level list name of each table, in table order.
  const std::vector<std::string>& lists() const { return lists_; }

  // Converts one object of table `table` into a row. Unknown fields are ignored (validation
  // already rejected them).
  ObjectRow ToRow(int table, const rapidjson::Value& obj) const;

 private:
  struct Field {
    int column = -1;                           // for scalar or JSON-text fields
    std::unordered_map<std::string, int> sub;  // for flattened objects
    bool json = false;
  };
  std::vector<TableSpec> specs_;
  std::vector<std::string> lists_;
  std::vector<std::unordered_map<std::string, Field>> fields_;
};

}  // namespace sluice::kcidb
