package triflestats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// MongoDriver reproduces upstream's MongoDB driver (reference §6.5): documents
// {key, [granularity], [at], data:{…nested…}}, upserts with "$inc" (every delta converted to
// float64) or "$set" (raw value) on dotted "data.<path>" fields, all updates of one call in one
// ordered bulk write, and one findOne per bucket on read (data returned as stored, not unpacked).
type MongoDriver struct {
	incSet           // Inc and Set, over write
	Collection       *mongo.Collection
	Separator        string
	JoinedIdentifier JoinedIdentifier
	ExpireAfter      time.Duration
	SystemTracking   bool
	BulkWrite        bool
}

// NewMongoDriver mirrors upstream (bulk writes on, system tracking on).
func NewMongoDriver(collection *mongo.Collection, mode JoinedIdentifier) *MongoDriver {
	d := &MongoDriver{Collection: collection, Separator: "::", JoinedIdentifier: mode,
		SystemTracking: true, BulkWrite: true}
	d.incSet = incSet{d.write}
	return d
}

// Description is MongoDriver(J|P|S).
func (d *MongoDriver) Description() string { return describe("MongoDriver", d.JoinedIdentifier) }

// Setup creates upstream's unique index for the mode (+ the TTL index with ExpireAfter).
func (d *MongoDriver) Setup(ctx context.Context) error {
	if d.Collection == nil {
		return fmt.Errorf("mongo driver requires Collection")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var keys bson.D
	switch d.JoinedIdentifier {
	case JoinedPartial:
		keys = bson.D{{Key: "key", Value: 1}, {Key: "at", Value: -1}}
	case JoinedSeparated:
		keys = bson.D{{Key: "key", Value: 1}, {Key: "granularity", Value: 1}, {Key: "at", Value: -1}}
	default:
		keys = bson.D{{Key: "key", Value: 1}}
	}
	models := []mongo.IndexModel{{Keys: keys, Options: options.Index().SetUnique(true)}}
	if d.ExpireAfter > 0 {
		models = append(models, mongo.IndexModel{Keys: bson.D{{Key: "expire_at", Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(0)})
	}
	_, err := d.Collection.Indexes().CreateMany(ctx, models)
	return err
}

func (d *MongoDriver) filter(k Key) (bson.D, error) {
	if err := requireAt(k, d.JoinedIdentifier); err != nil {
		return nil, err
	}
	switch d.JoinedIdentifier {
	case JoinedPartial:
		return bson.D{{Key: "key", Value: k.PartialJoin(d.Separator)}, {Key: "at", Value: *k.At}}, nil
	case JoinedSeparated:
		return bson.D{{Key: "key", Value: k.Key}, {Key: "granularity", Value: k.Granularity}, {Key: "at", Value: *k.At}}, nil
	}
	return bson.D{{Key: "key", Value: k.Join(d.Separator)}}, nil
}

func (d *MongoDriver) update(k Key, packed map[string]any, set bool) (bson.M, error) {
	fields := bson.M{}
	for f, v := range packed {
		if set {
			fields["data."+f] = v
			continue
		}
		n, ok := toFloat(v)
		if !ok {
			return nil, fmt.Errorf("increment requires numeric value for key %q", f)
		}
		fields["data."+f] = n
	}
	up := bson.M{}
	if set {
		up["$set"] = fields
	} else {
		up["$inc"] = fields
	}
	if d.ExpireAfter > 0 && k.At != nil {
		extra := bson.M{"expire_at": k.At.Add(d.ExpireAfter)}
		if set {
			fields["expire_at"] = extra["expire_at"]
		} else {
			up["$set"] = extra
		}
	}
	return up, nil
}

// write serves Inc (set false), which increments data fields and the system records, and Set (set
// true), which sets data fields; the system record is still incremented.
func (d *MongoDriver) write(keys []Key, values map[string]any, set bool) error {
	packed, err := packWrite(keys, values, d.Collection != nil, "mongo driver requires Collection")
	if err != nil || len(packed) == 0 {
		return err
	}
	var models []mongo.WriteModel
	err = eachBucket(keys, packed, set, d.SystemTracking, func(k Key, p map[string]any, s bool) error {
		f, err := d.filter(k)
		if err != nil {
			return err
		}
		u, err := d.update(k, p, s)
		if err != nil {
			return err
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(f).SetUpdate(u).SetUpsert(true))
		return nil
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if d.BulkWrite {
		_, err := d.Collection.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
		return err
	}
	for _, m := range models {
		u := m.(*mongo.UpdateOneModel)
		if _, err := d.Collection.UpdateOne(ctx, u.Filter, u.Update, options.Update().SetUpsert(true)); err != nil {
			return err
		}
	}
	return nil
}

// Get runs one findOne per bucket and returns its data sub-document as plain maps.
func (d *MongoDriver) Get(keys []Key) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(keys))
	ctx := context.Background()
	for _, k := range keys {
		f, err := d.filter(k)
		if err != nil {
			return nil, err
		}
		var doc bson.M
		err = d.Collection.FindOne(ctx, f).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			out = append(out, map[string]any{})
			continue
		}
		if err != nil {
			return nil, err
		}
		data, ok := plainDoc(doc["data"])
		if !ok {
			data = map[string]any{}
		}
		out = append(out, data)
	}
	return out, nil
}

func plainDoc(v any) (map[string]any, bool) {
	var m map[string]any
	switch x := v.(type) {
	case bson.M:
		m = x
	case map[string]any:
		m = x
	case bson.D:
		m = make(map[string]any, len(x))
		for _, e := range x {
			m[e.Key] = e.Value
		}
	default:
		return nil, false
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		if sub, ok := plainDoc(e); ok {
			out[k] = sub
		} else {
			out[k] = e
		}
	}
	return out, true
}
