/*
 * model.h: the data every stage shares, a validated deal and a validated subscriber.
 *
 * Plain structs with no behaviour: notifier/deal.c and notifier/subscriber.c build them
 * from untrusted JSON (and are the only places that may), rules/ reads them, nobody
 * else writes them. Every string is NUL-terminated and owned by the struct (for a
 * subscriber: by its one allocation or the intern table); free with deal_free() /
 * subscriber_free().
 */
#ifndef DEALPUSH_MODEL_H
#define DEALPUSH_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Channels a subscriber can be reached on. ORDER CHANNEL: keep model_channel_names[]
 * in notifier/subscriber.c in this order. */
enum channel {
	CH_SMS = 0,
	CH_DM = 1,
	CH_COUNT
};
#define CH_BIT(c) (1u << (c))

/* Size limits for untrusted input; anything larger is refused with a reason. */
#define MODEL_ID_MAX 128           /* deal and subscriber ids */
#define MODEL_TEXT_MAX 512         /* title, category, brand, region, campaign ... */
#define MODEL_URL_MAX 2048
#define MODEL_LIST_MAX 64          /* tags, categories, brands, keywords */
#define MODEL_DEAL_JSON_MAX 16384  /* one stream entry's JSON */
#define MODEL_SUB_JSON_MAX 16384

/* A list of owned strings. */
struct strlist {
	char **v;
	size_t n;
};

/*
 * A deal as published on stream "deals" (contract: docs/contracts.md).
 * Optional strings are NULL when absent; optional numbers use the has_ flags.
 * Times are Unix epoch seconds (UTC).
 */
struct deal {
	char *id;
	int cancel;               /* {"id":..., "cancel": true}: only id is set */
	int update;               /* "update": true: a new expiry for a deal already
	                           * published (docs/contracts.md); may be expired */
	char *title;
	char *category;           /* lower-cased on parse */
	char *brand;              /* lower-cased on parse */
	struct strlist tags;      /* lower-cased on parse */
	char *region;             /* upper-cased on parse, e.g. "US" */
	int has_price;
	double price;
	int has_list_price;
	double list_price;
	double discount_pct;      /* derived: 100*(list-price)/list, 0 when unknown */
	char currency[4];         /* ISO 4217, "" when absent */
	char *url;                /* http or https */
	char *code;               /* one shared code */
	char *code_pool;          /* Redis set of per-recipient codes */
	long quantity;            /* 0 = unlimited */
	int64_t starts_at;        /* 0 when absent */
	int64_t expires_at;
	char *campaign;
	char *product_id;         /* what the deal sells: an order of another product
	                           * is the push's halo (docs/attribution.md §6) */
	struct strlist test_to;   /* a test send's subscriber ids, as given; empty: none */
	int confirmed;            /* "confirmed": true: past the guards (a held deal
	                           * published again after its confirmation) */
};

/* Whether max_price and min_discount_pct are set lives in struct subscriber's small
 * fields (has_max_price, has_min_discount_pct), where it costs no padding. */
struct interests {
	struct strlist categories; /* lower-cased */
	struct strlist brands;     /* lower-cased */
	struct strlist keywords;   /* lower-cased; matched as substrings of the title */
	double max_price;
	double min_discount_pct;
};

/*
 * A subscriber (contract: docs/contracts.md). One built by subscriber_parse() is one
 * allocation holding the struct, its id, phone and dm_x and the lists' pointer arrays;
 * timezone, locale, region and every list item point into the shared table of
 * include/intern.h. Read-only: nothing may write through these pointers. Fields are
 * ordered to leave no padding (the mirror keeps a million of these).
 */
/*
 * What a subscriber did (docs/attribution.md, "Behaviour"): the times of the last
 * text, click and attributed purchase (epoch seconds, 0 = never), and per UTC day
 * (day = epoch / 86400) the texts (kept 7 days), clicks (30), purchases and revenue
 * (90) of the days that had any, oldest first. Kept by the funnel's scripts in hash
 * "behaviour"; one allocation, owned by its subscriber.
 */
struct sub_bday {
	uint32_t day;
	uint16_t texts;            /* saturate at their type's maximum */
	uint8_t clicks;
	uint8_t purchases;
	float revenue;
};

struct sub_behav {
	uint32_t last_text;        /* 32 bits (until 2106): 16 bytes and 12 a day */
	uint32_t last_click;
	uint32_t last_purchase;
	uint32_t ndays;
	struct sub_bday days[];
};

struct subscriber {
	char *id;
	char *phone;               /* E.164, NULL when absent */
	char *dm_x;                /* X user id for DMs, NULL when absent */
	char *timezone;            /* IANA name that exists in tzdata */
	char *locale;
	char *region;              /* upper-cased */
	int64_t consent[CH_COUNT]; /* epoch seconds consent was given; 0 = no consent */
	struct strlist tags;       /* lower-cased */
	struct interests interests;
	double engagement;         /* 0..1 */
	/* Small fields last, in 8 bytes: the mirror keeps a million of these. */
	uint8_t channels;          /* CH_BIT(CH_SMS) | CH_BIT(CH_DM) */
	uint8_t has_max_price;     /* interests.max_price is set */
	uint8_t has_min_discount_pct; /* interests.min_discount_pct is set */
	int8_t max_per_day;        /* 0 = no limit of the subscriber's own; at most 100 */
	int16_t quiet_start_min;   /* minutes after local midnight; -1 when no quiet hours */
	int16_t quiet_end_min;
	/* After the fields matching reads for every candidate, which so keep their
	 * places: read only by rules on behaviour. NULL: nothing known; owned, freed
	 * with the record. */
	struct sub_behav *behav;
};

#endif
