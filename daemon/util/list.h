/* SPDX-License-Identifier: MIT */
#pragma once

/* A doubly linked intrusive list: the item embeds LIST_FIELDS(Type, name), the owner keeps a
 * plain head pointer. */

#include <assert.h>
#include <stddef.h>

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                    \
        do {                                                              \
                __typeof__(*(head)) **_head_ = &(head), *_item_ = (item); \
                assert(_item_);                                           \
                _item_->name##_prev = NULL;                               \
                _item_->name##_next = *_head_;                            \
                if (*_head_)                                              \
                        (*_head_)->name##_prev = _item_;                  \
                *_head_ = _item_;                                         \
        } while (0)

/* At the tail, for lists used as queues: walks the list (keep those short). */
#define LIST_APPEND(name, head, item)                                     \
        do {                                                              \
                __typeof__(*(head)) **_head_ = &(head), *_item_ = (item); \
                __typeof__(*(head)) *_tail_ = *_head_;                    \
                assert(_item_);                                           \
                _item_->name##_next = NULL;                               \
                if (!_tail_) {                                            \
                        _item_->name##_prev = NULL;                       \
                        *_head_ = _item_;                                 \
                        break;                                            \
                }                                                         \
                while (_tail_->name##_next)                               \
                        _tail_ = _tail_->name##_next;                     \
                _tail_->name##_next = _item_;                             \
                _item_->name##_prev = _tail_;                             \
        } while (0)

#define LIST_REMOVE(name, head, item)                                           \
        do {                                                                    \
                __typeof__(*(head)) **_head_ = &(head), *_item_ = (item);       \
                assert(_item_);                                                 \
                if (_item_->name##_next)                                        \
                        _item_->name##_next->name##_prev = _item_->name##_prev; \
                if (_item_->name##_prev)                                        \
                        _item_->name##_prev->name##_next = _item_->name##_next; \
                else {                                                          \
                        assert(*_head_ == _item_);                              \
                        *_head_ = _item_->name##_next;                          \
                }                                                               \
                _item_->name##_next = _item_->name##_prev = NULL;               \
        } while (0)

#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

/* Allows removing i inside the body. */
#define LIST_FOREACH_SAFE(name, i, n, head) \
        for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))
