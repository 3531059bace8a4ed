package triflestats

import (
	"database/sql"
	"errors"
)

// incSet gives a driver upstream's Inc and Set, both through the driver's one write
// function (set false: add the values; set true: replace the leaves); the system record is
// incremented either way. Each New*Driver wires it.
type incSet struct {
	write func(keys []Key, values map[string]any, set bool) error
}

// Inc adds values in every bucket, then increments each bucket's system record.
func (w incSet) Inc(keys []Key, values map[string]any) error { return w.write(keys, values, false) }

// Set replaces the given leaves; the system record is still incremented.
func (w incSet) Set(keys []Key, values map[string]any) error { return w.write(keys, values, true) }

// packWrite is the start every upstream driver's Inc and Set share: with no keys nothing
// happens (not even the check of the connection), a driver without its connection fails with
// what ("<driver> requires <field>"), and values that pack to nothing write nothing. It returns
// the packed values; the caller writes nothing when there are none.
func packWrite(keys []Key, values map[string]any, connected bool, what string) (map[string]any, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if !connected {
		return nil, errors.New(what)
	}
	return Pack(values), nil
}

// eachBucket runs write for every key's own bucket with the packed values and, with system
// tracking, right after it for the bucket's system record (an increment of 1), in key order,
// stopping at the first error: upstream's write loop in every driver.
func eachBucket(keys []Key, packed map[string]any, set, system bool,
	write func(k Key, packed map[string]any, set bool) error) error {
	for _, k := range keys {
		if err := write(k, packed, set); err != nil {
			return err
		}
		if system {
			if err := write(systemKey(k), systemData(k, 1), false); err != nil {
				return err
			}
		}
	}
	return nil
}

// inTx runs fn in one transaction of db and commits it when fn succeeds; on any error the
// transaction is rolled back.
func inTx(db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
