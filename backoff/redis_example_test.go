package backoff_test

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/middleware"
)

// One retry quota for every process of a fleet: each process builds the
// same RedisBucket (same server, same key). While Redis fails, each process
// falls back to a local bucket and warns once through cfg.Logger. (Not run
// as a test: it needs a Redis server; the package's Redis tests start one.)
func ExampleNewRedisBucket() {
	var cfg aws.Config // from config.LoadDefaultConfig
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	bucket := backoff.NewRedisBucket(rdb, "streamstatus:bedrock:us-east-1", 500,
		func(o *backoff.RedisOptions) { o.Logger = cfg.Logger })
	budget := backoff.NewBudget(func(b *backoff.Budget) { b.Bucket = bucket })
	cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(budget)))
	_ = client
}
