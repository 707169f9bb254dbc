/*
 * http_wait.c: the list of requests a module answers from a later callback
 * (stage: http; http.h, struct http_wait).
 */
#include <stddef.h>

#include "http.h"

void
http_wait_add(struct http_wait **head, struct http_wait *w, struct http_req *r)
{
	w->head = head;
	w->r = r;
	w->prev = NULL;
	if ((w->next = *head) != NULL)
		(*head)->prev = w;
	*head = w;
}

void
http_wait_remove(struct http_wait *w)
{
	if (w->head == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		*w->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->head = NULL;
	w->prev = w->next = NULL;
}

void
http_wait_detach_all(struct http_wait **head)
{
	struct http_wait *w, *next;

	for (w = *head; w != NULL; w = next) {
		next = w->next;
		w->head = NULL;
		w->r = NULL;
		w->prev = w->next = NULL;
	}
	*head = NULL;
}
