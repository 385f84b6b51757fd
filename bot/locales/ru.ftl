# Все тексты, которые видят участники и администраторы, на русском.
# Синтаксис Fluent: https://projectfluent.org/fluent/guide/ — { $name } подставляет значение; формы
# множественного числа выбираются по числу ({ $count -> [one] … [few] … *[many] … }).

## Job replies

job-title-active = 🎨 Рисую…
job-title-done = ✅ Готово
job-title-failed = ⚠️ На этот раз без изображения
job-title-cancelled = 🛑 Отменено
job-field-from = Основа
job-field-aspect = Соотношение сторон
job-field-resolution = Разрешение
job-field-references = Референсы
job-field-status = Статус
job-field-estimate = Оценка
job-field-note = Примечание
job-field-took = Заняло
job-field-cancel = Отмена
job-field-model-reply = Ответ модели
job-field-what-happened = Что случилось
job-aspect-follows = как у референса
job-origin-link = { $action ->
    [reroll] Повтор
    [edit] Правка
    [vary] Вариация
   *[upscale] Увеличение
} [изображения #{ $parent }]({ $link })
job-origin = { $action ->
    [reroll] Повтор
    [edit] Правка
    [vary] Вариация
   *[upscale] Увеличение
} изображения #{ $parent }
job-footer-active = Нажмите «Отменить», поставьте ❌ или используйте /cancel, чтобы остановить.
job-footer-done = ❌ больше не действует: задача завершена.
job-footer-not-counted = Это не засчитано в ваш лимит.
job-footer-cancelled = ❌ больше не действует. Это не засчитано в ваш лимит.
job-late-cancel = Отмена пришла слишком поздно: изображение уже было готово (и оплачено).
job-on-its-way = { $member }, ваше изображение уже в работе.
job-here-is-your-image = { $member }, вот ваше изображение.
job-about-your-image = { $member }, о вашем изображении.

status-cancelling = Отменяю…
status-sending = Отправляю в сервис изображений…
status-queued = В очереди, позиция { $position }
status-waiting = Ожидание сервиса изображений · отправлено { $since }
status-generating = Генерация · началась { $since }
status-finishing = Завершаю…
duration-seconds = { $seconds } с
duration-minutes = { $minutes } мин { $seconds } с
estimate-soon = вот-вот
estimate-at = ожидается { $at }
size-mib = { NUMBER($value, minimumFractionDigits: 1, maximumFractionDigits: 1) } МиБ
size-kib = { NUMBER($value, maximumFractionDigits: 0) } КиБ
fit-note = Сжато с { $original } до { $now }, чтобы уложиться в лимит загрузки Discord.
fit-note-format = Сохранено как { $format }.
fit-note-size = Теперь { $width }×{ $height }.
notice-cancel-unreachable = Отменить не удалось: сервис изображений недоступен. Задача продолжается.
notice-cancel-unknown = Отменить не удалось: сервис изображений больше не знает эту задачу.

button-cancel = Отменить
button-reroll = Ещё раз
button-edit = Изменить
button-vary = Вариация
button-upscale = Увеличить

failure-content-blocked = Сервис изображений заблокировал запрос или референс. Попробуйте сформулировать иначе.
failure-invalid-request = Сервис изображений отклонил запрос (возможно, референс не читается).
failure-upstream-timeout = Сервис изображений отвечал слишком долго, и задача остановлена. Попробуйте ещё раз.
failure-upstream-failed = Сервису изображений не удалось создать это изображение. Попробуйте ещё раз.
failure-upstream-unavailable = Сервис изображений сейчас недоступен. Попробуйте позже.
failure-account-problem = Бот сейчас не может пользоваться сервисом изображений (проблема с его аккаунтом). Подробности — в журнале бота у его владельца.
failure-interrupted = Бот перезапустился во время отправки запроса и не знает, получил ли его сервис, поэтому остановился, чтобы не списать оплату дважды. Попробуйте ещё раз.
failure-no-image = Сервис изображений завершил работу, но не вернул изображение. Попробуйте ещё раз.
failure-invalid-reference = После перезапуска бота референс больше не читается. Попробуйте ещё раз.
failure-submit-uncertain = Сервис изображений не подтвердил запрос, и бот остановился. Попробуйте ещё раз.
failure-delivery-failed = Изображение готово, но опубликовать его здесь не удалось. Попробуйте ещё раз.
failure-result-unavailable = Изображение готово, но получить его не удалось. Попробуйте ещё раз.
failure-lost-upstream = Сервис изображений потерял эту задачу. Попробуйте ещё раз.

cancelled-by-service = Сервис изображений отменил эту задачу { $stage ->
    [pending] до отправки
    [queued] в очереди
   *[running] во время генерации
}.
cancelled-self = Отменено { $stage ->
    [pending] до отправки
    [queued] в очереди
   *[running] во время генерации
}.
cancelled-by = Отменено участником { $by } { $stage ->
    [pending] до отправки
    [queued] в очереди
   *[running] во время генерации
}.

refusal-max-concurrent = Вы достигли предела одновременных изображений ({ $allowed }). Дождитесь завершения одного или отмените его через /cancel.
refusal-daily = Вы достигли { $limit ->
    [guild] дневного лимита изображений этого сервера
   *[user] своего дневного лимита изображений на этом сервере
}: сегодня использовано { $used } из { $allowed }.
refusal-cost = Это изображение считалось бы за { $cost }.
refusal-resets = Лимит обновится <t:{ $at }:R> (<t:{ $at }:t>, полночь UTC).

## /imagine, its form, the buttons and cancelling

imagine-restarting = Бот сейчас перезапускается. Попробуйте через минуту; ничего не засчитано.
imagine-guild-only = Изображения можно создавать только на сервере, не в личных сообщениях.
imagine-missing-permissions = В этом канале я не могу работать: мне нужны права «{ $permissions }». Попросите администратора сервера или попробуйте другой канал.
permission-view-channel = Просматривать канал
permission-attach-files = Прикреплять файлы
imagine-prompt-empty = Запрос пуст. Опишите изображение, которое хотите получить.
imagine-prompt-too-long = В запросе { $length } символов, а можно не больше { $max }. Сократите его, пожалуйста.
imagine-too-many-references = Референсов { $count }, а модель принимает не больше { $max }.
reference-not-an-image = `{ $file }` — не изображение. Ничего не отправлено.
reference-unsupported = `{ $file }` — неподдерживаемый формат (подойдут PNG, JPEG, WebP или HEIC). Ничего не отправлено.
reference-too-large = `{ $file }` больше лимита { $cap } на один референс. Ничего не отправлено.
reference-corrupt = `{ $file }` не читается как изображение (возможно, файл повреждён). Ничего не отправлено.
reference-download-failed = Не удалось скачать `{ $file }` из Discord.
menu-no-images = В этом сообщении нет изображений для референса. Выберите сообщение с картинками или используйте /imagine.
menu-too-many-images = В этом сообщении { $count ->
    [one] { $count } изображение
    [few] { $count } изображения
   *[many] { $count } изображений
}; использовать можно не больше { $max }.
form-title-imagine = Нарисовать по этим изображениям
form-title-edit = Изменить изображение
form-prompt = Запрос
form-aspect = Соотношение сторон
form-aspect-follow = Как у референсов
form-resolution = Разрешение
form-more-images = Ещё референсы
form-more-images-hint = Необязательно. Всего не больше { $max }.
form-text-reply = Текстовый ответ
form-image-only = Только изображение
form-image-and-text = Изображение и текстовый ответ модели
followup-unknown = Это изображение здесь больше неизвестно.
followup-no-image = В этом сообщении больше нет изображения, продолжать не с чего.
followup-highest-tier = Это изображение уже в максимальном разрешении (4K).
followup-unavailable = Создание изображений сейчас недоступно.
followup-double-click = Уже в работе (кнопку нажали дважды).
cancel-requested = { $job ->
    [none] Отменяю ваше изображение.
   *[other] Отменяю ваше изображение #{ $job }.
}
cancel-already-requested = { $job ->
    [none] Это изображение уже отменяется.
   *[other] Изображение #{ $job } уже отменяется.
}
cancel-not-active = { $job ->
    [none] Это изображение уже готово.
   *[other] Изображение #{ $job } уже готово.
}
cancel-too-late = { $job ->
    [none] Поздно: изображение уже готово и будет доставлено.
   *[other] Поздно: изображение #{ $job } уже готово и будет доставлено.
}
cancel-failed = { $job ->
    [none] Сервис изображений не смог отменить задачу; она продолжается. Подробности — в ответе бота.
   *[other] Сервис изображений не смог отменить изображение #{ $job }; задача продолжается. Подробности — в ответе бота.
}
cancel-unknown = Это изображение здесь неизвестно.
cancel-not-yours = Отменить изображение может только тот, кто его заказал (или модератор).
cancel-nothing = У вас здесь нет изображений в работе.
cancel-not-in-progress = Это не ваше изображение в работе. Запустите /cancel без параметров, чтобы отменить последнее.
request-not-accepted = Запрос не принят.
unexpected-error = Что-то пошло не так на стороне бота. Попробуйте ещё раз чуть позже.
command-not-here = Эту команду здесь использовать нельзя.

## Command names and descriptions (what Discord shows in the command picker)

cmd-imagine = нарисовать
    .description = Создать изображение с Nano Banana Pro
cmd-imagine-prompt = запрос
    .description = Что нарисовать (до 2500 символов)
cmd-imagine-aspect-ratio = соотношение
    .description = Форма изображения; без него — как у первого референса (иначе 1:1)
cmd-imagine-resolution = разрешение
    .description = Размер: 1K, 2K или 4K (4K может считаться за несколько изображений)
cmd-imagine-text-reply = текст
    .description = Получить и текстовый ответ модели
cmd-imagine-image1 = изображение1
    .description = Референс
cmd-imagine-image2 = изображение2
    .description = Референс
cmd-imagine-image3 = изображение3
    .description = Референс
cmd-imagine-image4 = изображение4
    .description = Референс
cmd-imagine-image5 = изображение5
    .description = Референс
cmd-imagine-image6 = изображение6
    .description = Референс
cmd-imagine-image7 = изображение7
    .description = Референс
cmd-imagine-image8 = изображение8
    .description = Референс
cmd-imagine-image9 = изображение9
    .description = Референс
cmd-imagine-image10 = изображение10
    .description = Референс
menu-imagine-with-these-images = Нарисовать по этим изображениям
cmd-cancel = отмена
    .description = Отменить одно из ваших изображений, которое ещё в работе
cmd-cancel-job = задача
    .description = Какое изображение (по умолчанию — последнее в работе)

## quota, settings, history

# /quota и /usage
quota-field-user-daily = На участника в день
quota-field-guild-daily = На весь сервер в день
quota-field-max-concurrent = Одновременно в работе у участника
quota-field-weight-4k = Изображение 4K считается за
# Дневной лимит или лимит одновременных, в изображениях.
quota-limit =
    { $count } { $count ->
        [one] изображение
        [few] изображения
       *[many] изображений
    }
quota-images =
    { $count } { $count ->
        [one] изображение
        [few] изображения
       *[many] изображений
    }
# Вес 4K, когда сервер его не задал (действует значение владельца бота).
quota-weight-default = по умолчанию
quota-not-manager = Менять и смотреть настройки квоты могут только участники с правом «Управлять сервером».
quota-nothing-changed = Ничего не изменено: укажите хотя бы один параметр. Чтобы снять лимит, задайте 0.
quota-updated = Квота обновлена.
quota-title = Квота изображений
quota-used-today = Использовано сегодня (сервер)
# $reset — метка времени Discord (<t:…:R>): клиент участника сам покажет её на его языке.
quota-used = { $used } · обнулится <t:{ $reset }:R>
quota-used-of = { $used } из { $limit } · обнулится <t:{ $reset }:R>
quota-recent-changes = Последние изменения
quota-change-reset-member = сброс использования за сегодня: { $member }
quota-change-reset-server = сброс использования за сегодня: весь сервер
quota-reset-member =
    Использование за сегодня сброшено для { $member } (возвращено { $cleared } { $cleared ->
        [one] изображение
        [few] изображения
       *[many] изображений
    }).
quota-reset-server =
    Использование за сегодня сброшено для всего сервера (возвращено { $cleared } { $cleared ->
        [one] изображение
        [few] изображения
       *[many] изображений
    }).
usage-you-left =
    Вы: на сегодня осталось { $left } { $left ->
        [one] изображение
        [few] изображения
       *[many] изображений
    } из { $limit } (использовано { $used }).
usage-you-unlimited = Вы: сегодня использовано { $used }, дневного лимита нет.
usage-server-left =
    Сервер: на сегодня осталось { $left } { $left ->
        [one] изображение
        [few] изображения
       *[many] изображений
    } из { $limit } (использовано { $used }).
usage-server-unlimited = Сервер: сегодня использовано { $used }, дневного лимита нет.
usage-in-progress = В работе: { $active } из { $limit } возможных одновременно.
usage-weight-4k =
    Изображение 4K считается за { $weight } { $weight ->
        [one] изображение
        [few] изображения
       *[many] изображений
    }.
usage-resets = Дневной лимит обновится <t:{ $reset }:R> (<t:{ $reset }:t>, полночь UTC).

# Управление сервером: отказы /imagine и кнопок, строки канала журнала, /settings
controls-refused-blocked-member = Вы не можете создавать изображения на этом сервере: администратор заблокировал вас.
controls-refused-blocked-words = В вашем запросе есть слово или фраза, запрещённые на этом сервере. Переформулируйте его; ничего не засчитано.
controls-refused-4k-off = 4K на этом сервере выключено. Выберите 1K или 2K; ничего не засчитано.
controls-refused-4k-roles = 4K на этом сервере доступно только некоторым ролям. Выберите 1K или 2K; ничего не засчитано.
controls-log-blocked-member = 🚫 Запрос заблокированного участника { $member } в { $channel } отклонён.
controls-log-blocked-words = 🚫 Запрос { $member } в { $channel } отклонён: в нём есть запрещённое слово или фраза.
controls-log-quota-user-daily = 📉 Запрос { $member } в { $channel } отклонён: дневной лимит участника исчерпан (использовано { $used } из { $allowed }).
controls-log-quota-guild-daily = 📉 Запрос { $member } в { $channel } отклонён: дневной лимит сервера исчерпан (использовано { $used } из { $allowed }).
controls-log-quota-max-concurrent =
    📉 Запрос { $member } в { $channel } отклонён: одновременно в работе может быть не больше { $allowed } { $allowed ->
        [one] изображения
       *[other] изображений
    }.
# $reason — код сбоя (например, `upstream_timeout`), одинаковый во всех языках.
controls-log-failed = ⚠️ Не удалось создать изображение #{ $job } участника { $member } в { $channel } ({ $reason }).
controls-usage-blocked = Вы не можете создавать изображения на этом сервере: администратор заблокировал вас.
controls-usage-from-role = Ваш дневной лимит задан ролью { $role }.
controls-usage-from-member = Ваш дневной лимит администратор задал лично вам.
controls-quota-footer = Лимиты ролей и участников, блокировки, доступ к 4K и запрещённые слова: /настройки показать
controls-not-manager = Менять и смотреть эти настройки могут только участники с правом «Управлять сервером».
controls-guild-only = Эта команда работает только на сервере, а не в личных сообщениях.
controls-daily-range = Дневной лимит должен быть целым числом от 0 (без лимита) до { $max }. Ничего не изменено.
controls-role-gone = Этой роли на сервере больше нет. Ничего не изменено.
controls-role-everyone = У @everyone не может быть своего лимита: для всех участников используйте /квота задать участнику_в_день.
controls-role-everyone-4k = @everyone нельзя добавить в список: чтобы открыть 4K всем, используйте /настройки 4k доступ кому:Всем.
controls-remove-what = Укажите роль или участника, чей лимит нужно убрать.
controls-4k-unknown = Выберите «Всем», «Только указанным ролям» или «Никому».
controls-words-empty = Укажите одно или несколько слов или фраз через запятую.
controls-word-too-long =
    Каждая запись может быть не длиннее { $max } { $max ->
        [one] символа
       *[other] символов
    }, а в одной { $length } { $length ->
        [one] символ
        [few] символа
       *[many] символов
    }. Ничего не изменено.
controls-word-no-letters = В каждой записи должна быть хотя бы одна буква или цифра. Ничего не изменено.
controls-words-full =
    В списке может быть не больше { $max } { $max ->
        [one] записи
       *[other] записей
    }. Сейчас в нём { $count }, а это добавило бы ещё { $adding }. Ничего не добавлено: сначала уберите лишние через /настройки слова убрать.
controls-log-channel-no-access = Я не могу писать в { $channel }: там нужны права «Просматривать канал» и «Отправлять сообщения». Ничего не изменено.
# $daily — лимит в день (controls-per-day) или controls-no-limit.
controls-role-limit-set = Дневной лимит участников с ролью { $role }: { $daily } (считается самая высокая из ролей участника; личный лимит важнее).
controls-member-limit-set = Дневной лимит участника { $member }: { $daily }, независимо от ролей.
controls-role-limit-removed = У роли { $role } больше нет своего лимита.
controls-role-limit-absent = У роли { $role } и не было своего лимита.
controls-member-limit-removed = У участника { $member } больше нет личного лимита.
controls-member-limit-absent = У участника { $member } и не было личного лимита.
controls-blocked = Участник { $member } заблокирован: он не сможет создавать изображения на этом сервере, пока вы не выполните /настройки разблокировать.
controls-already-blocked = Участник { $member } уже заблокирован.
controls-unblocked = Участник { $member } разблокирован.
controls-not-blocked = Участник { $member } не был заблокирован.
controls-4k-everyone = 4K доступно всем.
controls-4k-off = 4K на этом сервере выключено.
controls-4k-roles = 4K доступно только этим ролям: { $roles }.
controls-4k-roles-none = 4K доступно только указанным ролям, но их пока нет: добавьте роль через /настройки 4k добавить.
controls-4k-role-added-off = Роль { $role } добавлена в список, но 4K на этом сервере выключено: включите его через /настройки 4k доступ.
controls-4k-role-absent = Роли { $role } не было в списке.
controls-words-added =
    Добавлено в список запрещённых: { $added } (уже были в нём: { $present }). Всего в списке { $total } { $total ->
        [one] запись
        [few] записи
       *[many] записей
    }.
controls-words-removed =
    Убрано из списка запрещённых: { $removed }. Всего в списке { $total } { $total ->
        [one] запись
        [few] записи
       *[many] записей
    }.
controls-words-none-removed = Ни одного из них нет в списке запрещённых.
controls-words-list-empty = На этом сервере нет запрещённых слов и фраз.
# Дальше идёт список, по записи в строке.
controls-words-list = Запрещённые слова и фразы ({ $count }):
controls-words-list-file = Запрещённые слова и фразы ({ $count }): список во вложении.
controls-log-channel-set = Отказы и сбои, на которые стоит обратить внимание, будут публиковаться в { $channel }.
controls-log-channel-off = Отказы и сбои больше не публикуются в канале.
controls-show-title = Настройки сервера
controls-show-default = Дневной лимит на участника (по умолчанию)
controls-show-roles = Лимиты ролей
controls-show-members = Лимиты участников
controls-show-blocked = Заблокированные участники
controls-show-4k = 4K
controls-show-words = Запрещённые слова
controls-show-log = Канал журнала
controls-show-none = нет
controls-show-more = … и ещё { $count }
controls-show-words-count =
    { $count } { $count ->
        [one] запись
        [few] записи
       *[many] записей
    } (посмотреть: /настройки слова список)
controls-show-by = { $what } · автор: { $by }, <t:{ $at }:R>
controls-show-footer = Личный лимит участника важнее лимитов его ролей; самый высокий лимит роли заменяет лимит по умолчанию. Дневной лимит сервера и лимит одновременных изображений действуют для всех.
controls-no-limit = без лимита
controls-per-day =
    { $count } { $count ->
        [one] изображение
        [few] изображения
       *[many] изображений
    } в день

# /history и /jobs
history-title = 🖼️ История
history-yours = Ваши изображения на этом сервере, сначала новые.
history-by-member = Изображения { $member } на этом сервере, сначала новые.
history-empty-yours = У вас пока нет изображений на этом сервере.
history-empty-member = У { $member } пока нет изображений на этом сервере.
history-not-moderator = Изображения других участников могут смотреть только модераторы (право «Управлять сообщениями»).
history-not-viewer = Листать этот список может только тот, кто его открыл.
history-previous = Назад
history-next = Дальше
history-state-delivered = ✅ Доставлено
history-state-failed = ⚠️ Не удалось
history-state-cancelled = 🛑 Отменено
history-state-in-progress = 🎨 В работе
# $parent — исходное изображение: «#12», со ссылкой на его сообщение, если оно известно.
history-from-reroll = Повтор { $parent }
history-from-edit = Правка { $parent }
history-from-vary = Вариация { $parent }
history-from-upscale = Увеличение { $parent }
history-from-other = Создано из { $parent }
history-jump = К сообщению
history-no-prompt = *(без запроса)*
history-ratio-reference = как у референса
history-references =
    { $count } { $count ->
        [one] референс
        [few] референса
       *[many] референсов
    }
jobs-title = 🎨 В работе
jobs-none = У вас здесь нет изображений в работе.
jobs-more =
    { $count ->
        [one] Показано { $count } самое раннее
        [few] Показаны { $count } самых ранних
       *[many] Показаны { $count } самых ранних
    }; в работе есть и другие.
jobs-left = осталось { $time }
jobs-about-few = несколько секунд
jobs-about-seconds = около { $seconds } с
jobs-about-minutes = около { $minutes } мин
jobs-server-queue = Очередь сервера
jobs-state-sending = Отправка
jobs-state-queued = В очереди
jobs-state-generating = Генерация
jobs-state-delivering = Доставка
jobs-queue-count = { $state }: { $count }
jobs-new-image = Новое изображение { $tier } заняло бы { $time }.

# Названия и описания команд: /quota, /usage, /settings, /history, /jobs
cmd-quota = квота
    .description = Сколько изображений могут создавать участники и весь сервер
cmd-quota-set = задать
    .description = Изменить лимиты; пропущенные параметры не меняются, 0 снимает лимит
cmd-quota-set-user-daily = участнику_в_день
    .description = Изображений на участника за сутки UTC, если нет лимита роли или участника (0 — без лимита)
cmd-quota-set-guild-daily = серверу_в_день
    .description = Изображений на весь сервер за сутки UTC (0 — без лимита)
cmd-quota-set-max-concurrent = одновременно
    .description = Сколько изображений участник может иметь в работе одновременно (0 — без лимита)
cmd-quota-set-weight-4k = вес_4k
    .description = За сколько изображений считается одно изображение 4K (по умолчанию 2)
cmd-quota-show = показать
    .description = Лимиты, использование за сегодня и кто что менял
cmd-quota-reset = сбросить
    .description = Вернуть использованное сегодня одному участнику или всему серверу
cmd-quota-reset-member = участник
    .description = Чьё использование сбросить (не указывайте, чтобы сбросить весь сервер)
cmd-usage = лимиты
    .description = Сколько изображений вы ещё можете создать сегодня
cmd-settings = настройки
    .description = Управление сервером: лимиты ролей и участников, блокировки, 4K, слова, канал журнала
cmd-settings-show = показать
    .description = Лимиты ролей и участников, блокировки, 4K, запрещённые слова, канал журнала
cmd-settings-limit = лимит
    .description = Дневные лимиты ролей и участников
cmd-settings-limit-role = роль
    .description = Дневной лимит для участников с ролью (считается самая высокая из их ролей)
cmd-settings-limit-role-role = роль
    .description = Роль
cmd-settings-limit-role-daily = в_день
    .description = Изображений за сутки UTC для участников с этой ролью (0 — без лимита)
cmd-settings-limit-member = участник
    .description = Дневной лимит для одного участника, независимо от его ролей
cmd-settings-limit-member-member = участник
    .description = Участник
cmd-settings-limit-member-daily = в_день
    .description = Изображений за сутки UTC для этого участника (0 — без лимита)
cmd-settings-limit-remove = убрать
    .description = Убрать лимит роли или участника
cmd-settings-limit-remove-role = роль
    .description = Роль, чей лимит убрать
cmd-settings-limit-remove-member = участник
    .description = Участник, чей лимит убрать
cmd-settings-block = заблокировать
    .description = Запретить участнику создавать изображения на этом сервере
cmd-settings-block-member = участник
    .description = Кого заблокировать
cmd-settings-unblock = разблокировать
    .description = Снова разрешить заблокированному участнику создавать изображения
cmd-settings-unblock-member = участник
    .description = Кого разблокировать
cmd-settings-4k = 4k
    .description = Кто может создавать изображения 4K
cmd-settings-4k-access = доступ
    .description = Кто может создавать изображения 4K на этом сервере
cmd-settings-4k-access-who = кому
    .description = Всем, только указанным ролям (/настройки 4k добавить) или никому
choice-everyone = Всем
choice-roles = Только указанным ролям
choice-off = Никому (4K выключено)
cmd-settings-4k-add = добавить
    .description = Разрешить роли 4K (тогда 4K только для указанных ролей)
cmd-settings-4k-add-role = роль
    .description = Роль, которой можно 4K
cmd-settings-4k-remove = убрать
    .description = Забрать 4K у роли из списка
cmd-settings-4k-remove-role = роль
    .description = Роль
cmd-settings-words = слова
    .description = Слова и фразы, которых не должно быть в запросах
cmd-settings-words-add = добавить
    .description = Запретить слова или фразы в запросах (регистр и диакритика не важны)
cmd-settings-words-add-words = слова
    .description = Слова или фразы через запятую (каждая совпадает только целыми словами)
cmd-settings-words-remove = убрать
    .description = Снять запрет со слов или фраз
cmd-settings-words-remove-words = слова
    .description = Слова или фразы через запятую
cmd-settings-words-list = список
    .description = Показать запрещённые слова и фразы (видно только вам)
cmd-settings-log-channel = канал-журнала
    .description = Куда публиковать отказы и сбои для администраторов
cmd-settings-log-channel-channel = канал
    .description = Канал (не указывайте, чтобы больше не публиковать)
cmd-history = история
    .description = Ваши недавние изображения на этом сервере (или участника)
cmd-history-member = участник
    .description = Чьи изображения (только для модераторов; по умолчанию ваши)
cmd-jobs = задачи
    .description = Ваши изображения в работе здесь (и очередь сервера для администраторов)
