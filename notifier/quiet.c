/*
 * quiet.c: the law of the recipient's place as data: legal sending windows, caps and
 * quiet hours (stages: admit and send).
 *
 * Pure over its arguments. A push's places are its +1 area code's state and its
 * stated region; its zones, the stated one and the area code's. Every window row of
 * every place applies in every zone (rows only intersect, so the stricter always
 * wins); quiet hours apply in the stated zone. Must never answer "allowed" for an
 * instant it could not place in every local time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quiet.h"

/* ORDER QUIET_ZONE: bits of quiet_area_codes[].zones, names in quiet_zone_names[]. */
enum {
	QZ_NY = 1 << 0, QZ_CHI = 1 << 1, QZ_DEN = 1 << 2, QZ_PHX = 1 << 3, QZ_LA = 1 << 4,
	QZ_ANC = 1 << 5, QZ_ADAK = 1 << 6, QZ_HNL = 1 << 7, QZ_PR = 1 << 8, QZ_VI = 1 << 9,
	QZ_GU = 1 << 10, QZ_MP = 1 << 11, QZ_AS = 1 << 12
};
static const char *const quiet_zone_names[] = {
	"America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
	"America/Los_Angeles", "America/Anchorage", "America/Adak", "Pacific/Honolulu",
	"America/Puerto_Rico", "America/St_Thomas", "Pacific/Guam", "Pacific/Saipan",
	"Pacific/Pago_Pago",
};
#define QZ_COUNT (sizeof(quiet_zone_names) / sizeof(quiet_zone_names[0]))

/*
 * Geographic NANP area codes of the United States, its district and territories:
 * state (ISO 3166-2) and the zones the code covers. Sorted by code (bsearch). Source
 * and date, and the rule for a code split between zones: docs/compliance.md §5.1.
 * Eastern zones of Indiana, Kentucky and Michigan are written America/New_York, and
 * Idaho's and Oregon's mountain part America/Denver: their rules are the same since
 * 2007. 928 (northern Arizona) includes the Navajo Nation, which keeps DST: Phoenix
 * and Denver both apply there.
 */
static const struct quiet_area {
	unsigned short npa;
	char region[6];
	unsigned short zones;
} quiet_area_codes[] = {
	{ 201, "US-NJ", QZ_NY },
	{ 202, "US-DC", QZ_NY },
	{ 203, "US-CT", QZ_NY },
	{ 205, "US-AL", QZ_CHI },
	{ 206, "US-WA", QZ_LA },
	{ 207, "US-ME", QZ_NY },
	{ 208, "US-ID", QZ_DEN | QZ_LA },
	{ 209, "US-CA", QZ_LA },
	{ 210, "US-TX", QZ_CHI },
	{ 212, "US-NY", QZ_NY },
	{ 213, "US-CA", QZ_LA },
	{ 214, "US-TX", QZ_CHI },
	{ 215, "US-PA", QZ_NY },
	{ 216, "US-OH", QZ_NY },
	{ 217, "US-IL", QZ_CHI },
	{ 218, "US-MN", QZ_CHI },
	{ 219, "US-IN", QZ_CHI },
	{ 220, "US-OH", QZ_NY },
	{ 223, "US-PA", QZ_NY },
	{ 224, "US-IL", QZ_CHI },
	{ 225, "US-LA", QZ_CHI },
	{ 227, "US-MD", QZ_NY },
	{ 228, "US-MS", QZ_CHI },
	{ 229, "US-GA", QZ_NY },
	{ 231, "US-MI", QZ_NY },
	{ 234, "US-OH", QZ_NY },
	{ 235, "US-MO", QZ_CHI },
	{ 239, "US-FL", QZ_NY },
	{ 240, "US-MD", QZ_NY },
	{ 248, "US-MI", QZ_NY },
	{ 251, "US-AL", QZ_CHI },
	{ 252, "US-NC", QZ_NY },
	{ 253, "US-WA", QZ_LA },
	{ 254, "US-TX", QZ_CHI },
	{ 256, "US-AL", QZ_CHI },
	{ 260, "US-IN", QZ_NY },
	{ 262, "US-WI", QZ_CHI },
	{ 267, "US-PA", QZ_NY },
	{ 269, "US-MI", QZ_NY },
	{ 270, "US-KY", QZ_NY | QZ_CHI },
	{ 272, "US-PA", QZ_NY },
	{ 274, "US-WI", QZ_CHI },
	{ 276, "US-VA", QZ_NY },
	{ 279, "US-CA", QZ_LA },
	{ 281, "US-TX", QZ_CHI },
	{ 283, "US-OH", QZ_NY },
	{ 301, "US-MD", QZ_NY },
	{ 302, "US-DE", QZ_NY },
	{ 303, "US-CO", QZ_DEN },
	{ 304, "US-WV", QZ_NY },
	{ 305, "US-FL", QZ_NY },
	{ 307, "US-WY", QZ_DEN },
	{ 308, "US-NE", QZ_CHI | QZ_DEN },
	{ 309, "US-IL", QZ_CHI },
	{ 310, "US-CA", QZ_LA },
	{ 312, "US-IL", QZ_CHI },
	{ 313, "US-MI", QZ_NY },
	{ 314, "US-MO", QZ_CHI },
	{ 315, "US-NY", QZ_NY },
	{ 316, "US-KS", QZ_CHI },
	{ 317, "US-IN", QZ_NY },
	{ 318, "US-LA", QZ_CHI },
	{ 319, "US-IA", QZ_CHI },
	{ 320, "US-MN", QZ_CHI },
	{ 321, "US-FL", QZ_NY },
	{ 323, "US-CA", QZ_LA },
	{ 324, "US-FL", QZ_NY },
	{ 325, "US-TX", QZ_CHI },
	{ 326, "US-OH", QZ_NY },
	{ 327, "US-AR", QZ_CHI },
	{ 329, "US-NY", QZ_NY },
	{ 330, "US-OH", QZ_NY },
	{ 331, "US-IL", QZ_CHI },
	{ 332, "US-NY", QZ_NY },
	{ 334, "US-AL", QZ_CHI },
	{ 336, "US-NC", QZ_NY },
	{ 337, "US-LA", QZ_CHI },
	{ 339, "US-MA", QZ_NY },
	{ 340, "US-VI", QZ_VI },
	{ 341, "US-CA", QZ_LA },
	{ 346, "US-TX", QZ_CHI },
	{ 347, "US-NY", QZ_NY },
	{ 350, "US-CA", QZ_LA },
	{ 351, "US-MA", QZ_NY },
	{ 352, "US-FL", QZ_NY },
	{ 353, "US-WI", QZ_CHI },
	{ 360, "US-WA", QZ_LA },
	{ 361, "US-TX", QZ_CHI },
	{ 363, "US-NY", QZ_NY },
	{ 364, "US-KY", QZ_NY | QZ_CHI },
	{ 369, "US-CA", QZ_LA },
	{ 380, "US-OH", QZ_NY },
	{ 385, "US-UT", QZ_DEN },
	{ 386, "US-FL", QZ_NY },
	{ 401, "US-RI", QZ_NY },
	{ 402, "US-NE", QZ_CHI },
	{ 404, "US-GA", QZ_NY },
	{ 405, "US-OK", QZ_CHI },
	{ 406, "US-MT", QZ_DEN },
	{ 407, "US-FL", QZ_NY },
	{ 408, "US-CA", QZ_LA },
	{ 409, "US-TX", QZ_CHI },
	{ 410, "US-MD", QZ_NY },
	{ 412, "US-PA", QZ_NY },
	{ 413, "US-MA", QZ_NY },
	{ 414, "US-WI", QZ_CHI },
	{ 415, "US-CA", QZ_LA },
	{ 417, "US-MO", QZ_CHI },
	{ 419, "US-OH", QZ_NY },
	{ 423, "US-TN", QZ_NY },
	{ 424, "US-CA", QZ_LA },
	{ 425, "US-WA", QZ_LA },
	{ 430, "US-TX", QZ_CHI },
	{ 432, "US-TX", QZ_CHI | QZ_DEN },
	{ 434, "US-VA", QZ_NY },
	{ 435, "US-UT", QZ_DEN },
	{ 436, "US-OH", QZ_NY },
	{ 440, "US-OH", QZ_NY },
	{ 442, "US-CA", QZ_LA },
	{ 443, "US-MD", QZ_NY },
	{ 445, "US-PA", QZ_NY },
	{ 447, "US-IL", QZ_CHI },
	{ 448, "US-FL", QZ_NY | QZ_CHI },
	{ 458, "US-OR", QZ_LA | QZ_DEN },
	{ 463, "US-IN", QZ_NY },
	{ 464, "US-IL", QZ_CHI },
	{ 469, "US-TX", QZ_CHI },
	{ 470, "US-GA", QZ_NY },
	{ 472, "US-NC", QZ_NY },
	{ 475, "US-CT", QZ_NY },
	{ 478, "US-GA", QZ_NY },
	{ 479, "US-AR", QZ_CHI },
	{ 480, "US-AZ", QZ_PHX },
	{ 484, "US-PA", QZ_NY },
	{ 501, "US-AR", QZ_CHI },
	{ 502, "US-KY", QZ_NY },
	{ 503, "US-OR", QZ_LA },
	{ 504, "US-LA", QZ_CHI },
	{ 505, "US-NM", QZ_DEN },
	{ 507, "US-MN", QZ_CHI },
	{ 508, "US-MA", QZ_NY },
	{ 509, "US-WA", QZ_LA },
	{ 510, "US-CA", QZ_LA },
	{ 512, "US-TX", QZ_CHI },
	{ 513, "US-OH", QZ_NY },
	{ 515, "US-IA", QZ_CHI },
	{ 516, "US-NY", QZ_NY },
	{ 517, "US-MI", QZ_NY },
	{ 518, "US-NY", QZ_NY },
	{ 520, "US-AZ", QZ_PHX },
	{ 530, "US-CA", QZ_LA },
	{ 531, "US-NE", QZ_CHI },
	{ 534, "US-WI", QZ_CHI },
	{ 539, "US-OK", QZ_CHI },
	{ 540, "US-VA", QZ_NY },
	{ 541, "US-OR", QZ_LA | QZ_DEN },
	{ 551, "US-NJ", QZ_NY },
	{ 557, "US-MO", QZ_CHI },
	{ 559, "US-CA", QZ_LA },
	{ 561, "US-FL", QZ_NY },
	{ 562, "US-CA", QZ_LA },
	{ 563, "US-IA", QZ_CHI },
	{ 564, "US-WA", QZ_LA },
	{ 567, "US-OH", QZ_NY },
	{ 570, "US-PA", QZ_NY },
	{ 571, "US-VA", QZ_NY },
	{ 572, "US-OK", QZ_CHI },
	{ 573, "US-MO", QZ_CHI },
	{ 574, "US-IN", QZ_NY | QZ_CHI },
	{ 575, "US-NM", QZ_DEN },
	{ 580, "US-OK", QZ_CHI },
	{ 582, "US-PA", QZ_NY },
	{ 585, "US-NY", QZ_NY },
	{ 586, "US-MI", QZ_NY },
	{ 601, "US-MS", QZ_CHI },
	{ 602, "US-AZ", QZ_PHX },
	{ 603, "US-NH", QZ_NY },
	{ 605, "US-SD", QZ_CHI | QZ_DEN },
	{ 606, "US-KY", QZ_NY | QZ_CHI },
	{ 607, "US-NY", QZ_NY },
	{ 608, "US-WI", QZ_CHI },
	{ 609, "US-NJ", QZ_NY },
	{ 610, "US-PA", QZ_NY },
	{ 612, "US-MN", QZ_CHI },
	{ 614, "US-OH", QZ_NY },
	{ 615, "US-TN", QZ_CHI },
	{ 616, "US-MI", QZ_NY },
	{ 617, "US-MA", QZ_NY },
	{ 618, "US-IL", QZ_CHI },
	{ 619, "US-CA", QZ_LA },
	{ 620, "US-KS", QZ_CHI | QZ_DEN },
	{ 623, "US-AZ", QZ_PHX },
	{ 624, "US-NY", QZ_NY },
	{ 626, "US-CA", QZ_LA },
	{ 628, "US-CA", QZ_LA },
	{ 629, "US-TN", QZ_CHI },
	{ 630, "US-IL", QZ_CHI },
	{ 631, "US-NY", QZ_NY },
	{ 636, "US-MO", QZ_CHI },
	{ 640, "US-NJ", QZ_NY },
	{ 641, "US-IA", QZ_CHI },
	{ 645, "US-FL", QZ_NY },
	{ 646, "US-NY", QZ_NY },
	{ 650, "US-CA", QZ_LA },
	{ 651, "US-MN", QZ_CHI },
	{ 656, "US-FL", QZ_NY },
	{ 657, "US-CA", QZ_LA },
	{ 659, "US-AL", QZ_CHI },
	{ 660, "US-MO", QZ_CHI },
	{ 661, "US-CA", QZ_LA },
	{ 662, "US-MS", QZ_CHI },
	{ 667, "US-MD", QZ_NY },
	{ 669, "US-CA", QZ_LA },
	{ 670, "US-MP", QZ_MP },
	{ 671, "US-GU", QZ_GU },
	{ 678, "US-GA", QZ_NY },
	{ 679, "US-MI", QZ_NY },
	{ 680, "US-NY", QZ_NY },
	{ 681, "US-WV", QZ_NY },
	{ 682, "US-TX", QZ_CHI },
	{ 684, "US-AS", QZ_AS },
	{ 686, "US-VA", QZ_NY },
	{ 689, "US-FL", QZ_NY },
	{ 701, "US-ND", QZ_CHI | QZ_DEN },
	{ 702, "US-NV", QZ_LA },
	{ 703, "US-VA", QZ_NY },
	{ 704, "US-NC", QZ_NY },
	{ 706, "US-GA", QZ_NY },
	{ 707, "US-CA", QZ_LA },
	{ 708, "US-IL", QZ_CHI },
	{ 712, "US-IA", QZ_CHI },
	{ 713, "US-TX", QZ_CHI },
	{ 714, "US-CA", QZ_LA },
	{ 715, "US-WI", QZ_CHI },
	{ 716, "US-NY", QZ_NY },
	{ 717, "US-PA", QZ_NY },
	{ 718, "US-NY", QZ_NY },
	{ 719, "US-CO", QZ_DEN },
	{ 720, "US-CO", QZ_DEN },
	{ 724, "US-PA", QZ_NY },
	{ 725, "US-NV", QZ_LA },
	{ 726, "US-TX", QZ_CHI },
	{ 727, "US-FL", QZ_NY },
	{ 728, "US-FL", QZ_NY },
	{ 730, "US-IL", QZ_CHI },
	{ 731, "US-TN", QZ_CHI },
	{ 732, "US-NJ", QZ_NY },
	{ 734, "US-MI", QZ_NY },
	{ 737, "US-TX", QZ_CHI },
	{ 740, "US-OH", QZ_NY },
	{ 743, "US-NC", QZ_NY },
	{ 747, "US-CA", QZ_LA },
	{ 754, "US-FL", QZ_NY },
	{ 757, "US-VA", QZ_NY },
	{ 760, "US-CA", QZ_LA },
	{ 762, "US-GA", QZ_NY },
	{ 763, "US-MN", QZ_CHI },
	{ 765, "US-IN", QZ_NY },
	{ 769, "US-MS", QZ_CHI },
	{ 770, "US-GA", QZ_NY },
	{ 771, "US-DC", QZ_NY },
	{ 772, "US-FL", QZ_NY },
	{ 773, "US-IL", QZ_CHI },
	{ 774, "US-MA", QZ_NY },
	{ 775, "US-NV", QZ_LA },
	{ 779, "US-IL", QZ_CHI },
	{ 781, "US-MA", QZ_NY },
	{ 785, "US-KS", QZ_CHI | QZ_DEN },
	{ 786, "US-FL", QZ_NY },
	{ 787, "US-PR", QZ_PR },
	{ 801, "US-UT", QZ_DEN },
	{ 802, "US-VT", QZ_NY },
	{ 803, "US-SC", QZ_NY },
	{ 804, "US-VA", QZ_NY },
	{ 805, "US-CA", QZ_LA },
	{ 806, "US-TX", QZ_CHI },
	{ 808, "US-HI", QZ_HNL },
	{ 810, "US-MI", QZ_NY },
	{ 812, "US-IN", QZ_NY | QZ_CHI },
	{ 813, "US-FL", QZ_NY },
	{ 814, "US-PA", QZ_NY },
	{ 815, "US-IL", QZ_CHI },
	{ 816, "US-MO", QZ_CHI },
	{ 817, "US-TX", QZ_CHI },
	{ 818, "US-CA", QZ_LA },
	{ 820, "US-CA", QZ_LA },
	{ 821, "US-SC", QZ_NY },
	{ 826, "US-VA", QZ_NY },
	{ 828, "US-NC", QZ_NY },
	{ 830, "US-TX", QZ_CHI },
	{ 831, "US-CA", QZ_LA },
	{ 832, "US-TX", QZ_CHI },
	{ 835, "US-PA", QZ_NY },
	{ 837, "US-CA", QZ_LA },
	{ 838, "US-NY", QZ_NY },
	{ 839, "US-SC", QZ_NY },
	{ 840, "US-CA", QZ_LA },
	{ 843, "US-SC", QZ_NY },
	{ 845, "US-NY", QZ_NY },
	{ 847, "US-IL", QZ_CHI },
	{ 848, "US-NJ", QZ_NY },
	{ 850, "US-FL", QZ_NY | QZ_CHI },
	{ 854, "US-SC", QZ_NY },
	{ 856, "US-NJ", QZ_NY },
	{ 857, "US-MA", QZ_NY },
	{ 858, "US-CA", QZ_LA },
	{ 859, "US-KY", QZ_NY },
	{ 860, "US-CT", QZ_NY },
	{ 861, "US-IL", QZ_CHI },
	{ 862, "US-NJ", QZ_NY },
	{ 863, "US-FL", QZ_NY },
	{ 864, "US-SC", QZ_NY },
	{ 865, "US-TN", QZ_NY },
	{ 870, "US-AR", QZ_CHI },
	{ 872, "US-IL", QZ_CHI },
	{ 878, "US-PA", QZ_NY },
	{ 901, "US-TN", QZ_CHI },
	{ 903, "US-TX", QZ_CHI },
	{ 904, "US-FL", QZ_NY },
	{ 906, "US-MI", QZ_NY | QZ_CHI },
	{ 907, "US-AK", QZ_ANC | QZ_ADAK },
	{ 908, "US-NJ", QZ_NY },
	{ 909, "US-CA", QZ_LA },
	{ 910, "US-NC", QZ_NY },
	{ 912, "US-GA", QZ_NY },
	{ 913, "US-KS", QZ_CHI },
	{ 914, "US-NY", QZ_NY },
	{ 915, "US-TX", QZ_DEN },
	{ 916, "US-CA", QZ_LA },
	{ 917, "US-NY", QZ_NY },
	{ 918, "US-OK", QZ_CHI },
	{ 919, "US-NC", QZ_NY },
	{ 920, "US-WI", QZ_CHI },
	{ 925, "US-CA", QZ_LA },
	{ 928, "US-AZ", QZ_PHX | QZ_DEN },
	{ 929, "US-NY", QZ_NY },
	{ 930, "US-IN", QZ_NY | QZ_CHI },
	{ 931, "US-TN", QZ_CHI },
	{ 934, "US-NY", QZ_NY },
	{ 936, "US-TX", QZ_CHI },
	{ 937, "US-OH", QZ_NY },
	{ 938, "US-AL", QZ_CHI },
	{ 939, "US-PR", QZ_PR },
	{ 940, "US-TX", QZ_CHI },
	{ 941, "US-FL", QZ_NY },
	{ 943, "US-GA", QZ_NY },
	{ 945, "US-TX", QZ_CHI },
	{ 947, "US-MI", QZ_NY },
	{ 948, "US-VA", QZ_NY },
	{ 949, "US-CA", QZ_LA },
	{ 951, "US-CA", QZ_LA },
	{ 952, "US-MN", QZ_CHI },
	{ 954, "US-FL", QZ_NY },
	{ 956, "US-TX", QZ_CHI },
	{ 959, "US-CT", QZ_NY },
	{ 970, "US-CO", QZ_DEN },
	{ 971, "US-OR", QZ_LA },
	{ 972, "US-TX", QZ_CHI },
	{ 973, "US-NJ", QZ_NY },
	{ 975, "US-MO", QZ_CHI },
	{ 978, "US-MA", QZ_NY },
	{ 979, "US-TX", QZ_CHI },
	{ 980, "US-NC", QZ_NY },
	{ 983, "US-CO", QZ_DEN },
	{ 984, "US-NC", QZ_NY },
	{ 985, "US-LA", QZ_CHI },
	{ 986, "US-ID", QZ_DEN | QZ_LA },
	{ 989, "US-MI", QZ_NY },
};
#define QUIET_NAREA (sizeof(quiet_area_codes) / sizeof(quiet_area_codes[0]))

static int
area_cmp(const void *key, const void *elem)
{
	return (int)*(const unsigned short *)key -
	    (int)((const struct quiet_area *)elem)->npa;
}

static const struct quiet_area *
area_of(const char *phone)
{
	unsigned short npa;
	int i;

	if (phone == NULL || strncmp(phone, "+1", 2) != 0 || strlen(phone) != 12)
		return NULL;
	for (i = 2; i < 12; i++)
		if (phone[i] < '0' || phone[i] > '9')
			return NULL;
	npa = (unsigned short)((phone[2] - '0') * 100 + (phone[3] - '0') * 10 +
	    (phone[4] - '0'));
	return bsearch(&npa, quiet_area_codes, QUIET_NAREA, sizeof(quiet_area_codes[0]),
	    area_cmp);
}

int
quiet_place_known(const char *region)
{
	size_t i;

	for (i = 0; region != NULL && i < QUIET_NAREA; i++)
		if (strcmp(quiet_area_codes[i].region, region) == 0)
			return 1;
	return 0;
}

void
quiet_place_of(const struct subscriber *s, struct quiet_place *p)
{
	const struct quiet_area *a = area_of(s->phone);
	size_t i;

	memset(p, 0, sizeof(*p));
	if (a != NULL) {
		snprintf(p->regions[p->nregions++], QUIET_PLACE_MAX, "%s", a->region);
		for (i = 0; i < QZ_COUNT && p->nzones < QUIET_ZONES_MAX; i++)
			if (a->zones & (1u << i))
				p->zones[p->nzones++] = quiet_zone_names[i];
	}
	if (s->region != NULL && s->region[0] != '\0' &&
	    (p->nregions == 0 || strcmp(p->regions[0], s->region) != 0))
		snprintf(p->regions[p->nregions++], QUIET_PLACE_MAX, "%s", s->region);
}

int
quiet_zones_load(struct tzcache *zones, char *why, size_t size)
{
	struct err err;
	size_t i;

	for (i = 0; i < QZ_COUNT; i++) {
		err_clear(&err);
		if (tz_get(zones, quiet_zone_names[i], &err) == NULL) {
			snprintf(why, size, "%s: %s", quiet_zone_names[i], err.msg);
			return -1;
		}
	}
	return 0;
}

/* 1 when minute m of the day lies in [start, end), wrapping midnight. */
static int
in_span(int m, int start, int end)
{
	return start < end ? (m >= start && m < end) : (m >= start || m < end);
}

/* 1 when row w applies to place p ("" applies everywhere). */
static int
row_applies(const char *region, const struct quiet_place *p)
{
	size_t i;

	if (region[0] == '\0')
		return 1;
	for (i = 0; i < p->nregions; i++)
		if (strcmp(p->regions[i], region) == 0)
			return 1;
	return 0;
}

/* The statutory row of region (or the federal one) that keeps minute m of weekday
 * wd closed, or NULL when none does. */
static const struct quiet_window *
statutory_closed(const struct quiet_rules *q, const char *region, int wd, int m)
{
	size_t i;

	for (i = 0; i < q->nwindows; i++) {
		const struct quiet_window *w = &q->windows[i];

		if (!w->statutory || (w->region[0] != '\0' && strcmp(w->region, region) != 0))
			continue;
		if ((w->wday == QUIET_ANY_DAY || w->wday == wd) &&
		    !in_span(m, w->start_min, w->end_min))
			return w;
	}
	return NULL;
}

int
quiet_rules_add_window(struct quiet_rules *q, const char *region, int wday,
    int start_min, int end_min, int statutory, char *why, size_t size)
{
	const struct quiet_window *sw;
	struct quiet_window *w;
	int wd, m;

	if (start_min < 0 || start_min > 1439 || end_min < 1 || end_min > 1440 ||
	    start_min == end_min || wday < QUIET_ANY_DAY || wday > 6) {
		snprintf(why, size, "a window is HH:MM-HH:MM within 00:00-24:00, start and "
		    "end different");
		return -1;
	}
	if (region[0] != '\0' && !quiet_place_known(region)) {
		snprintf(why, size, "unknown place '%s' (US-XX: a state, DC or a territory)",
		    region);
		return -1;
	}
	if (q->nwindows == QUIET_ROWS_MAX) {
		snprintf(why, size, "more than %d window rows", QUIET_ROWS_MAX);
		return -1;
	}
	if (!statutory)
		for (wd = 0; wd < 7; wd++) {
			if (wday != QUIET_ANY_DAY && wd != wday)
				continue;
			for (m = 0; m < 1440; m++)
				if (in_span(m, start_min, end_min) &&
				    (sw = statutory_closed(q, region, wd, m)) != NULL) {
					snprintf(why, size, "opens %02d:%02d, which the statutory "
					    "window %02d:%02d-%02d:%02d of %s keeps closed: rows only "
					    "tighten, so it cannot loosen it", m / 60, m % 60,
					    sw->start_min / 60, sw->start_min % 60, sw->end_min / 60,
					    sw->end_min % 60, sw->region[0] ? sw->region :
					    "every place");
					return -2;
				}
		}
	w = &q->windows[q->nwindows++];
	snprintf(w->region, sizeof(w->region), "%s", region);
	w->wday = wday;
	w->start_min = start_min;
	w->end_min = end_min;
	w->statutory = statutory;
	return 0;
}

int
quiet_rules_add_cap(struct quiet_rules *q, const char *region, int max, long window_s,
    int statutory, char *why, size_t size)
{
	struct quiet_cap *c;
	size_t i;

	if (max < 1 || max > 1000 || window_s < 3600 || window_s > 7 * 86400) {
		snprintf(why, size, "a cap is N/Hh: 1 to 1000 texts per 1 to 168 hours");
		return -1;
	}
	if (!quiet_place_known(region)) {
		snprintf(why, size, "unknown place '%s' (US-XX: a state, DC or a territory)",
		    region);
		return -1;
	}
	if (q->ncaps == QUIET_ROWS_MAX) {
		snprintf(why, size, "more than %d cap rows", QUIET_ROWS_MAX);
		return -1;
	}
	for (i = 0; !statutory && i < q->ncaps; i++)
		if (q->caps[i].statutory && strcmp(q->caps[i].region, region) == 0 &&
		    (max > q->caps[i].max || window_s < q->caps[i].window_s)) {
			snprintf(why, size, "the law allows at most %d per %ld h for %s: a cap "
			    "row can only tighten it", q->caps[i].max, q->caps[i].window_s / 3600,
			    region);
			return -2;
		}
	c = &q->caps[q->ncaps++];
	snprintf(c->region, sizeof(c->region), "%s", region);
	c->max = max;
	c->window_s = window_s;
	c->statutory = statutory;
	return 0;
}

void
quiet_rules_default(struct quiet_rules *q)
{
	static const char *const eight_pm[] = { "US-FL", "US-OK", "US-MD", "US-WA" };
	static const char *const three_a_day[] = { "US-FL", "US-OK", "US-MD" };
	char why[160];
	size_t i;

	memset(q, 0, sizeof(*q));
	/* ORDER STATUTE: each row's statute is in docs/compliance.md §5.2. */
	quiet_rules_add_window(q, "", QUIET_ANY_DAY, 8 * 60, 21 * 60, 1, why, sizeof(why));
	for (i = 0; i < sizeof(eight_pm) / sizeof(eight_pm[0]); i++)
		quiet_rules_add_window(q, eight_pm[i], QUIET_ANY_DAY, 8 * 60, 20 * 60, 1, why,
		    sizeof(why));
	quiet_rules_add_window(q, "US-CT", QUIET_ANY_DAY, 9 * 60, 20 * 60, 1, why,
	    sizeof(why));
	for (i = 0; i < sizeof(three_a_day) / sizeof(three_a_day[0]); i++)
		quiet_rules_add_cap(q, three_a_day[i], 3, 86400, 1, why, sizeof(why));
}

struct quiet_limit
quiet_limit_of(const struct quiet_rules *q, const struct quiet_place *p)
{
	struct quiet_limit l = { 0, 0 };
	size_t i;

	for (i = 0; i < q->ncaps; i++) {
		if (!row_applies(q->caps[i].region, p))
			continue;
		if (l.max == 0 || q->caps[i].max < l.max)
			l.max = q->caps[i].max;
		if (q->caps[i].window_s > l.window_s)
			l.window_s = q->caps[i].window_s;
	}
	return l;
}

/* The zones of a push: the stated one first. */
struct quiet_zones {
	const struct tz *z[QUIET_ZONES_MAX + 1];
	size_t n;
};

/* 1 when every window of p is open at t in every zone, and (own = 1) t is outside
 * s's quiet hours in its stated zone; 0 otherwise, also when t cannot be placed. */
static int
allowed_at(const struct quiet_rules *q, const struct quiet_place *p,
    const struct quiet_zones *zs, const struct subscriber *s, int own, int64_t t)
{
	struct tz_local l;
	size_t i, k;
	int m;

	for (k = 0; k < zs->n; k++) {
		if (tz_local(zs->z[k], t, &l) < 0)
			return 0;
		m = l.hour * 60 + l.min;
		for (i = 0; i < q->nwindows; i++) {
			const struct quiet_window *w = &q->windows[i];

			if (row_applies(w->region, p) && (w->wday == QUIET_ANY_DAY ||
			    w->wday == l.wday) && !in_span(m, w->start_min, w->end_min))
				return 0;
		}
		if (k == 0 && own && s->quiet_start_min >= 0 &&
		    s->quiet_start_min != s->quiet_end_min &&
		    in_span(m, s->quiet_start_min, s->quiet_end_min))
			return 0;
	}
	return 1;
}

/* Days since 1970-01-01 of a civil date, and back (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* The first allowed instant after now within eight local days, or QUIET_NEVER. An
 * allowed stretch begins where some window opens, where quiet hours end or at a
 * midnight (a weekday row changes there), in some zone: only those are tried. */
static int64_t
next_start(const struct quiet_rules *q, const struct quiet_place *p,
    const struct quiet_zones *zs, const struct subscriber *s, int own, int64_t now)
{
	int starts[QUIET_ROWS_MAX + 2], nstarts, d, y, mo, dd;
	int64_t best = QUIET_NEVER, day0, t;
	struct tz_local l;
	size_t i, k;

	for (k = 0; k < zs->n; k++) {
		if (tz_local(zs->z[k], now, &l) < 0)
			return QUIET_NEVER;
		nstarts = 0;
		starts[nstarts++] = 0;
		for (i = 0; i < q->nwindows; i++)
			if (row_applies(q->windows[i].region, p))
				starts[nstarts++] = q->windows[i].start_min;
		if (k == 0 && own && s->quiet_start_min >= 0 &&
		    s->quiet_start_min != s->quiet_end_min)
			starts[nstarts++] = s->quiet_end_min;
		day0 = days_from_civil(l.year, l.month, l.day);
		for (d = 0; d <= 8; d++) {
			civil_from_days(day0 + d, &y, &mo, &dd);
			for (i = 0; i < (size_t)nstarts; i++) {
				t = tz_from_local(zs->z[k], y, mo, dd, starts[i] / 60 % 24,
				    starts[i] % 60, 0);
				if (t == TZ_TIME_ERROR || t <= now || t >= best)
					continue;
				if (allowed_at(q, p, zs, s, own, t))
					best = t;
			}
		}
	}
	return best;
}

int64_t
quiet_next_allowed(const struct quiet_rules *q, struct tzcache *zones,
    const struct tz *z, const struct subscriber *s, int64_t now)
{
	struct quiet_place p;
	struct quiet_zones zs;
	struct tz_local l;
	int64_t best;
	size_t i;

	if (q == NULL || z == NULL || s == NULL || tz_local(z, now, &l) < 0)
		return TZ_TIME_ERROR;
	quiet_place_of(s, &p);
	zs.n = 0;
	zs.z[zs.n++] = z;
	for (i = 0; i < p.nzones; i++) {
		const struct tz *az = zones != NULL ? tz_get(zones, p.zones[i], NULL) : NULL;

		if (az == NULL)
			return TZ_TIME_ERROR;
		if (strcmp(tz_name(az), tz_name(z)) != 0)
			zs.z[zs.n++] = az;
	}
	if (allowed_at(q, &p, &zs, s, 1, now))
		return now;
	if ((best = next_start(q, &p, &zs, s, 1, now)) != QUIET_NEVER)
		return best;
	/* Never: because of the subscriber's own hours, or of the law alone? */
	return next_start(q, &p, &zs, s, 0, now - 1) == QUIET_NEVER &&
	    !allowed_at(q, &p, &zs, s, 0, now) ? QUIET_NO_WINDOW : QUIET_NEVER;
}

int
quiet_local_day(const struct tz *z, int64_t now, char *buf, size_t size)
{
	struct tz_local l;

	if (tz_local(z, now, &l) < 0 || size < 9)
		return -1;
	snprintf(buf, size, "%04d%02d%02d", l.year % 10000, l.month, l.day);
	return 0;
}

int64_t
quiet_day_start(const struct tz *z, int64_t now)
{
	struct tz_local l;

	if (tz_local(z, now, &l) < 0)
		return TZ_TIME_ERROR;
	return tz_from_local(z, l.year, l.month, l.day, 0, 0, 0);
}
