package triflestats

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite", as upstream
)

// SQLiteDriver reproduces upstream's SQLite driver (reference §6.1), including its bug: the
// INSERT stores packed keys flat ("meta.duration") while the UPDATE addresses them through the
// unquoted JSON path '$.meta.duration', i.e. a nested object, so repeated writes of a dotted
// key leave a flat and a nested copy.
type SQLiteDriver struct {
	incSet           // Inc and Set, over write
	DB               *sql.DB
	TableName        string
	Separator        string
	JoinedIdentifier JoinedIdentifier
	SystemTracking   bool
}

// NewSQLiteDriver mirrors upstream (empty table name → trifle_stats, separator "::").
func NewSQLiteDriver(db *sql.DB, tableName string, mode JoinedIdentifier) *SQLiteDriver {
	d := &SQLiteDriver{DB: db, TableName: tableOrDefault(tableName), Separator: "::",
		JoinedIdentifier: mode, SystemTracking: true}
	d.incSet = incSet{d.write}
	return d
}

// Description is SQLiteDriver(J|P|S).
func (d *SQLiteDriver) Description() string { return describe("SQLiteDriver", d.JoinedIdentifier) }

// Setup runs the pragmas and upstream's CREATE TABLE for the mode.
func (d *SQLiteDriver) Setup() error {
	if d.DB == nil {
		return fmt.Errorf("sqlite driver requires DB")
	}
	for _, p := range []string{"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", "PRAGMA busy_timeout=5000;"} {
		if _, err := d.DB.Exec(p); err != nil {
			return err
		}
	}
	var ddl string
	switch d.JoinedIdentifier {
	case JoinedPartial:
		ddl = "CREATE TABLE IF NOT EXISTS %s (key TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (key, at));"
	case JoinedSeparated:
		ddl = "CREATE TABLE IF NOT EXISTS %s (key TEXT NOT NULL, granularity TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (key, granularity, at));"
	default:
		ddl = "CREATE TABLE IF NOT EXISTS %s (key TEXT PRIMARY KEY, data TEXT NOT NULL DEFAULT '{}');"
	}
	_, err := d.DB.Exec(fmt.Sprintf(ddl, d.TableName))
	return err
}

const sqliteAtLayout = "2006-01-02T15:04:05Z"

// sqlIdent is one identifier: its column names and values, and the lookup string used by Get.
type sqlIdent struct {
	cols   []string
	vals   []any
	lookup string
}

func (d *SQLiteDriver) ident(k Key) (sqlIdent, error) {
	if err := requireAt(k, d.JoinedIdentifier); err != nil {
		return sqlIdent{}, err
	}
	switch d.JoinedIdentifier {
	case JoinedPartial:
		key, at := k.PartialJoin(d.Separator), k.At.UTC().Format(sqliteAtLayout)
		return sqlIdent{[]string{"key", "at"}, []any{key, at}, key + "|" + at}, nil
	case JoinedSeparated:
		at := k.At.UTC().Format(sqliteAtLayout)
		return sqlIdent{[]string{"key", "granularity", "at"}, []any{k.Key, k.Granularity, at},
			k.Key + "|" + k.Granularity + "|" + at}, nil
	}
	key := k.Join(d.Separator)
	return sqlIdent{[]string{"key"}, []any{key}, key}, nil
}

// write serves Inc (set false), which adds values in every bucket, then increments each bucket's
// system record, and Set (set true), which replaces the given leaves; the system record is still
// incremented.
func (d *SQLiteDriver) write(keys []Key, values map[string]any, set bool) error {
	packed, err := packWrite(keys, values, d.DB != nil, "sqlite driver requires DB")
	if err != nil || len(packed) == 0 {
		return err
	}
	return inTx(d.DB, func(tx *sql.Tx) error {
		return eachBucket(keys, packed, set, d.SystemTracking, func(k Key, p map[string]any, s bool) error {
			id, err := d.ident(k)
			if err != nil {
				return err
			}
			return d.upsert(tx, id, p, s)
		})
	})
}

// upsert issues one statement per sorted batch of 10 packed keys:
// INSERT … VALUES (…, json(?)) ON CONFLICT (…) DO UPDATE SET data = json_set(json_set(data, …), …).
func (d *SQLiteDriver) upsert(tx *sql.Tx, id sqlIdent, packed map[string]any, set bool) error {
	names := make([]string, 0, len(packed))
	for k := range packed {
		names = append(names, k)
	}
	sort.Strings(names)
	cols := strings.Join(id.cols, ", ")
	for start := 0; start < len(names); start += 10 {
		batch := names[start:min(start+10, len(names))]
		doc := make(map[string]any, len(batch))
		for _, k := range batch {
			doc[k] = packed[k]
		}
		text, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		args := append([]any{}, id.vals...)
		args = append(args, string(text))
		expr := "data"
		for _, k := range batch {
			path := "$." + strings.ReplaceAll(k, "'", "''")
			if set {
				expr = fmt.Sprintf("json_set(%s, '%s', ?)", expr, path)
			} else {
				expr = fmt.Sprintf("json_set(%s, '%s', IFNULL(json_extract(data, '%s'), 0) + ?)", expr, path, path)
			}
			args = append(args, packed[k])
		}
		marks := strings.Repeat("?, ", len(id.cols)) + "json(?)"
		q := fmt.Sprintf("INSERT INTO %s (%s, data) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET data = %s;",
			d.TableName, cols, marks, cols, expr)
		if _, err := tx.Exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// Get reads all buckets with one SELECT *; a partial/separated bucket matches its at text and
// the ".000000Z" variant; rows are keyed by their normalised identifier, last row wins.
func (d *SQLiteDriver) Get(keys []Key) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ids := make([]sqlIdent, len(keys))
	var conds []string
	var args []any
	for i, k := range keys {
		id, err := d.ident(k)
		if err != nil {
			return nil, err
		}
		ids[i] = id
		switch d.JoinedIdentifier {
		case JoinedPartial:
			conds = append(conds, "(key = ? AND (at = ? OR at = ?))")
		case JoinedSeparated:
			conds = append(conds, "(key = ? AND granularity = ? AND (at = ? OR at = ?))")
		default:
			conds = append(conds, "(key = ?)")
		}
		args = append(args, id.vals...)
		if d.JoinedIdentifier == JoinedPartial || d.JoinedIdentifier == JoinedSeparated {
			at := id.vals[len(id.vals)-1].(string)
			args = append(args, strings.TrimSuffix(at, "Z")+".000000Z")
		}
	}
	rows, err := d.DB.Query(fmt.Sprintf("SELECT * FROM %s WHERE %s;", d.TableName, strings.Join(conds, " OR ")), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := map[string]map[string]any{}
	for rows.Next() {
		var key, gran, at, data string
		var lookup string
		switch d.JoinedIdentifier {
		case JoinedPartial:
			err = rows.Scan(&key, &at, &data)
			lookup = key + "|" + normaliseAt(at)
		case JoinedSeparated:
			err = rows.Scan(&key, &gran, &at, &data)
			lookup = key + "|" + gran + "|" + normaliseAt(at)
		default:
			err = rows.Scan(&key, &data)
			lookup = key
		}
		if err != nil {
			return nil, err
		}
		packed := map[string]any{}
		if json.Unmarshal([]byte(data), &packed) != nil || packed == nil {
			packed = map[string]any{}
		}
		found[lookup] = packed
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		out = append(out, Unpack(found[id.lookup]))
	}
	return out, nil
}

func normaliseAt(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(sqliteAtLayout)
}
