/* kd-status-page: for staff: what this desk is, how it is set up, and its health. */
#pragma once

#include "kd-page.h"

G_BEGIN_DECLS

#define KD_TYPE_STATUS_PAGE (kd_status_page_get_type())
G_DECLARE_FINAL_TYPE(KdStatusPage, kd_status_page, KD, STATUS_PAGE, KdPage)

G_END_DECLS
