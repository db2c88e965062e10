/* kd-welcome-page: what this desk does, and one big choice per enrolment flow. */
#pragma once

#include "kd-page.h"

G_BEGIN_DECLS

#define KD_TYPE_WELCOME_PAGE (kd_welcome_page_get_type())
G_DECLARE_FINAL_TYPE(KdWelcomePage, kd_welcome_page, KD, WELCOME_PAGE, KdPage)

G_END_DECLS
