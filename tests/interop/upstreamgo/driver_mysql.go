package triflestats

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// MySQLDriver reproduces upstream's MySQL driver: backtick-quoted names, `at`
// bound as UTC text `YYYY-MM-DD HH:MM:SS.ffffff`, quoted JSON paths `$."k"` (flat keys), one
// INSERT … ON DUPLICATE KEY UPDATE `data` = JSON_SET(…) per bucket and one per system record in a
// transaction, increments through DECIMAL(65,10), and one SELECT for a whole Get.
//
// One adaptation, for MariaDB only: upstream's `CAST(? AS JSON)` is MySQL 8 syntax that MariaDB
// rejects (error 1064), so upstream cannot write to MariaDB at all. On a MariaDB server the model
// writes `JSON_EXTRACT(?, '$')` instead, MariaDB's way of turning JSON text into a JSON value;
// everything else is upstream's text. Open db with github.com/go-sql-driver/mysql and
// parseTime=true&loc=UTC, as upstream's README does.
type MySQLDriver struct {
	incSet           // Inc and Set, over write
	DB               *sql.DB
	TableName        string
	Separator        string
	JoinedIdentifier JoinedIdentifier
	SystemTracking   bool
	castJSON         string // "CAST(? AS JSON)", or MariaDB's stand-in (found by Setup)
}

// NewMySQLDriver mirrors upstream (empty table name → trifle_stats, separator "::").
func NewMySQLDriver(db *sql.DB, tableName string, mode JoinedIdentifier) *MySQLDriver {
	d := &MySQLDriver{DB: db, TableName: tableOrDefault(tableName), Separator: "::",
		JoinedIdentifier: mode, SystemTracking: true}
	d.incSet = incSet{d.write}
	return d
}

// Description is MySQLDriver(J|P|S).
func (d *MySQLDriver) Description() string { return describe("MySQLDriver", d.JoinedIdentifier) }

func mysqlQuote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// mysqlPath is upstream's quoted path: `\` → `\\`, `"` → `\"`, `'` → `”`.
func mysqlPath(k string) string {
	k = strings.ReplaceAll(k, `\`, `\\`)
	k = strings.ReplaceAll(k, `"`, `\"`)
	k = strings.ReplaceAll(k, `'`, `''`)
	return `'$."` + k + `"'`
}

func (d *MySQLDriver) cast() string {
	if d.castJSON == "" {
		var version string
		d.castJSON = "CAST(? AS JSON)"
		if d.DB.QueryRow("SELECT VERSION()").Scan(&version) == nil && strings.Contains(version, "MariaDB") {
			d.castJSON = "JSON_EXTRACT(?, '$')"
		}
	}
	return d.castJSON
}

// Setup creates the table of the mode.
func (d *MySQLDriver) Setup() error {
	if d.DB == nil {
		return fmt.Errorf("mysql driver requires DB")
	}
	var ddl string
	switch d.JoinedIdentifier {
	case JoinedPartial:
		ddl = "CREATE TABLE IF NOT EXISTS %s (`key` VARCHAR(255) NOT NULL, `at` DATETIME(6) NOT NULL, `data` JSON NOT NULL, PRIMARY KEY (`key`, `at`));"
	case JoinedSeparated:
		ddl = "CREATE TABLE IF NOT EXISTS %s (`key` VARCHAR(255) NOT NULL, `granularity` VARCHAR(255) NOT NULL, `at` DATETIME(6) NOT NULL, `data` JSON NOT NULL, PRIMARY KEY (`key`, `granularity`, `at`));"
	default:
		ddl = "CREATE TABLE IF NOT EXISTS %s (`key` VARCHAR(255) PRIMARY KEY, `data` JSON NOT NULL);"
	}
	_, err := d.DB.Exec(fmt.Sprintf(ddl, mysqlQuote(d.TableName)))
	return err
}

const mysqlAtLayout = "2006-01-02 15:04:05.000000"

func (d *MySQLDriver) ident(k Key) (cols []string, vals []any, err error) {
	if err := requireAt(k, d.JoinedIdentifier); err != nil {
		return nil, nil, err
	}
	switch d.JoinedIdentifier {
	case JoinedPartial:
		return []string{"`key`", "`at`"}, []any{k.PartialJoin(d.Separator), k.At.UTC().Format(mysqlAtLayout)}, nil
	case JoinedSeparated:
		return []string{"`key`", "`granularity`", "`at`"}, []any{k.Key, k.Granularity, k.At.UTC().Format(mysqlAtLayout)}, nil
	}
	return []string{"`key`"}, []any{k.Join(d.Separator)}, nil
}

func (d *MySQLDriver) upsert(tx *sql.Tx, k Key, packed map[string]any, set bool) error {
	cols, vals, err := d.ident(k)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(packed))
	for n := range packed {
		names = append(names, n)
	}
	sort.Strings(names)
	whole, err := json.Marshal(packed)
	if err != nil {
		return err
	}
	args := append(vals, string(whole))
	pairs := make([]string, 0, len(names))
	for _, n := range names {
		if set {
			text, err := json.Marshal(packed[n])
			if err != nil {
				return err
			}
			pairs = append(pairs, mysqlPath(n)+", "+d.cast())
			args = append(args, string(text))
			continue
		}
		f, ok := toFloat(packed[n])
		if !ok {
			return fmt.Errorf("increment requires numeric value for key %q", n)
		}
		pairs = append(pairs, fmt.Sprintf("%s, (COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(COALESCE(`data`, JSON_OBJECT()), %s)) AS DECIMAL(65,10)), 0) + CAST(? AS DECIMAL(65,10)))",
			mysqlPath(n), mysqlPath(n)))
		args = append(args, f)
	}
	marks := strings.Repeat("?, ", len(cols))
	q := fmt.Sprintf("INSERT INTO %s (%s, `data`) VALUES (%s%s) ON DUPLICATE KEY UPDATE `data` = JSON_SET(COALESCE(`data`, JSON_OBJECT()), %s);",
		mysqlQuote(d.TableName), strings.Join(cols, ", "), marks, d.cast(), strings.Join(pairs, ", "))
	_, err = tx.Exec(q, args...)
	return err
}

// write serves Inc (set false), which adds values on the server (DECIMAL(65,10)) and increments the
// system records, and Set (set true), which replaces the given leaves; the system record is still
// incremented.
func (d *MySQLDriver) write(keys []Key, values map[string]any, set bool) error {
	packed, err := packWrite(keys, values, d.DB != nil, "mysql driver requires DB")
	if err != nil || len(packed) == 0 {
		return err
	}
	d.cast() // outside the transaction
	return inTx(d.DB, func(tx *sql.Tx) error {
		return eachBucket(keys, packed, set, d.SystemTracking, func(k Key, p map[string]any, s bool) error {
			return d.upsert(tx, k, p, s)
		})
	})
}

// Get reads every bucket with one SELECT and unpacks the flat JSON objects in key order.
func (d *MySQLDriver) Get(keys []Key) ([]map[string]any, error) {
	out := make([]map[string]any, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	conds := make([]string, 0, len(keys))
	var args []any
	lookup := make([]string, len(keys))
	for i, k := range keys {
		cols, vals, err := d.ident(k)
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(cols))
		for j, c := range cols {
			parts[j] = c + " = ?"
		}
		conds = append(conds, "("+strings.Join(parts, " AND ")+")")
		args = append(args, vals...)
		strs := make([]string, len(vals))
		for j, v := range vals {
			strs[j] = fmt.Sprint(v)
		}
		lookup[i] = strings.Join(strs, "|")
	}
	sel := "`key`"
	switch d.JoinedIdentifier {
	case JoinedPartial:
		sel = "`key`, `at`"
	case JoinedSeparated:
		sel = "`key`, `granularity`, `at`"
	}
	rows, err := d.DB.Query(fmt.Sprintf("SELECT %s, CAST(`data` AS CHAR) AS data FROM %s WHERE %s;",
		sel, mysqlQuote(d.TableName), strings.Join(conds, " OR ")), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := map[string]map[string]any{}
	for rows.Next() {
		var key, gran string
		var at time.Time
		var text []byte
		var dest []any
		switch d.JoinedIdentifier {
		case JoinedPartial:
			dest = []any{&key, &at, &text}
		case JoinedSeparated:
			dest = []any{&key, &gran, &at, &text}
		default:
			dest = []any{&key, &text}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		id := key
		switch d.JoinedIdentifier {
		case JoinedPartial:
			id = key + "|" + at.UTC().Format(mysqlAtLayout)
		case JoinedSeparated:
			id = key + "|" + gran + "|" + at.UTC().Format(mysqlAtLayout)
		}
		packed := map[string]any{}
		if json.Unmarshal(text, &packed) != nil || packed == nil {
			packed = map[string]any{}
		}
		found[id] = packed
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range keys {
		if p, ok := found[lookup[i]]; ok {
			out[i] = Unpack(p)
		} else {
			out[i] = map[string]any{}
		}
	}
	return out, nil
}
