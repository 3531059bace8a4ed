package triflestats

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// PostgresDriver reproduces upstream's PostgreSQL driver (reference §6.2): per bucket a
// SELECT … LIMIT 1, a merge in Go (float64 sums), and an upsert of the whole flat JSON object,
// inside one transaction but without row locks (concurrent writers lose updates).
type PostgresDriver struct {
	incSet           // Inc and Set, over write
	DB               *sql.DB
	TableName        string
	PingTableName    string
	Separator        string
	JoinedIdentifier JoinedIdentifier
	SystemTracking   bool
}

// NewPostgresDriver mirrors upstream; open db with the pgx stdlib driver ("pgx").
func NewPostgresDriver(db *sql.DB, tableName string, mode JoinedIdentifier) *PostgresDriver {
	tableName = tableOrDefault(tableName)
	d := &PostgresDriver{DB: db, TableName: tableName, PingTableName: tableName + "_ping",
		Separator: "::", JoinedIdentifier: mode, SystemTracking: true}
	d.incSet = incSet{d.write}
	return d
}

// Description is PostgresDriver(J|P|S).
func (d *PostgresDriver) Description() string { return describe("PostgresDriver", d.JoinedIdentifier) }

// Setup creates the table of the mode (nothing for the ping table).
func (d *PostgresDriver) Setup() error {
	if d.DB == nil {
		return fmt.Errorf("postgres driver requires DB")
	}
	var ddl string
	switch d.JoinedIdentifier {
	case JoinedPartial:
		ddl = "CREATE TABLE IF NOT EXISTS %s (key VARCHAR(255) NOT NULL, at TIMESTAMPTZ NOT NULL, data JSONB NOT NULL DEFAULT '{}'::jsonb, PRIMARY KEY (key, at));"
	case JoinedSeparated:
		ddl = "CREATE TABLE IF NOT EXISTS %s (key VARCHAR(255) NOT NULL, granularity VARCHAR(255) NOT NULL, at TIMESTAMPTZ NOT NULL, data JSONB NOT NULL DEFAULT '{}'::jsonb, PRIMARY KEY (key, granularity, at));"
	default:
		ddl = "CREATE TABLE IF NOT EXISTS %s (key VARCHAR(255) PRIMARY KEY, data JSONB NOT NULL DEFAULT '{}'::jsonb);"
	}
	_, err := d.DB.Exec(fmt.Sprintf(ddl, d.TableName))
	return err
}

func (d *PostgresDriver) ident(k Key) (cols []string, vals []any, err error) {
	if err := requireAt(k, d.JoinedIdentifier); err != nil {
		return nil, nil, err
	}
	switch d.JoinedIdentifier {
	case JoinedPartial:
		return []string{"key", "at"}, []any{k.PartialJoin(d.Separator), *k.At}, nil
	case JoinedSeparated:
		return []string{"key", "granularity", "at"}, []any{k.Key, k.Granularity, *k.At}, nil
	}
	return []string{"key"}, []any{k.Join(d.Separator)}, nil
}

func where(cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprintf("%s = $%d", c, i+1)
	}
	return strings.Join(parts, " AND ")
}

type querier interface {
	QueryRow(query string, args ...any) *sql.Row
}

func (d *PostgresDriver) readPacked(q querier, cols []string, vals []any) (map[string]any, error) {
	var text []byte
	err := q.QueryRow(fmt.Sprintf("SELECT data FROM %s WHERE %s LIMIT 1;", d.TableName, where(cols)), vals...).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, err
	}
	packed := map[string]any{}
	if json.Unmarshal(text, &packed) != nil || packed == nil {
		return map[string]any{}, nil
	}
	return packed, nil
}

// mergePacked: inc adds float64(existing numeric or 0) + float64(delta) and rejects a
// non-numeric delta; set overwrites; keys not mentioned are kept.
func mergePacked(old, delta map[string]any, set bool) (map[string]any, error) {
	out := make(map[string]any, len(old)+len(delta))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range delta {
		if set {
			out[k] = v
			continue
		}
		dv, ok := toFloat(v)
		if !ok {
			return nil, fmt.Errorf("increment requires numeric value for key %q", k)
		}
		ov, _ := toFloat(out[k])
		out[k] = ov + dv
	}
	return out, nil
}

func (d *PostgresDriver) merge(tx *sql.Tx, k Key, delta map[string]any, set bool) error {
	cols, vals, err := d.ident(k)
	if err != nil {
		return err
	}
	old, err := d.readPacked(tx, cols, vals)
	if err != nil {
		return err
	}
	merged, err := mergePacked(old, delta, set)
	if err != nil {
		return err
	}
	text, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	marks := make([]string, len(cols)+1)
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	marks[len(cols)] += "::jsonb"
	list := strings.Join(cols, ", ")
	q := fmt.Sprintf("INSERT INTO %s (%s, data) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET data = EXCLUDED.data;",
		d.TableName, list, strings.Join(marks, ", "), list)
	_, err = tx.Exec(q, append(vals, string(text))...)
	return err
}

// write serves Inc (set false), which adds values (read-modify-write per bucket) and increments the
// system records, and Set (set true), which replaces the given leaves; the system record is still
// incremented.
func (d *PostgresDriver) write(keys []Key, values map[string]any, set bool) error {
	packed, err := packWrite(keys, values, d.DB != nil, "postgres driver requires DB")
	if err != nil || len(packed) == 0 {
		return err
	}
	return inTx(d.DB, func(tx *sql.Tx) error {
		return eachBucket(keys, packed, set, d.SystemTracking, func(k Key, p map[string]any, s bool) error {
			return d.merge(tx, k, p, s)
		})
	})
}

// Get issues one SELECT per bucket and unpacks the flat JSONB object.
func (d *PostgresDriver) Get(keys []Key) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		cols, vals, err := d.ident(k)
		if err != nil {
			return nil, err
		}
		packed, err := d.readPacked(d.DB, cols, vals)
		if err != nil {
			return nil, err
		}
		out = append(out, Unpack(packed))
	}
	return out, nil
}
